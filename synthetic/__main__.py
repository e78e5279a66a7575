"""The ``synthetic`` command (``python -m synthetic``, and the installed script).

The start of a run (pytest, the plugins, the config's models, the catalogue)
allocates a great deal and frees almost nothing, so for the commands that
run the checks once and end (`PAUSED`) the cyclic garbage collector is paused
until the checks are about to run, where the run's plugin resumes it
(`synthetic.run_plugin`) after freezing what was built so far (shared with the
run's forked processes, and never worth a collection). The command's own
process resumes it once its run is forked (`synthetic.launcher`). The
long-lived commands (``serve``, ``watch``, ``sandbox``) and the others
collect as usual from the start.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

PAUSED = frozenset({"run", "gate", "demo", "list"})


def pauses(argv: Sequence[str]) -> bool:
    """Whether the command in ``argv`` (without the program name) starts with the
    collector paused: its first word is one of `PAUSED`."""
    return bool(argv) and argv[0] in PAUSED


def main() -> int:
    if pauses(sys.argv[1:]):
        gc.disable()
    try:
        from synthetic.cli import main as command

        return command()
    finally:
        gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
