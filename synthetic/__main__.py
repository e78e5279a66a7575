"""The ``synthetic`` command (``python -m synthetic``, and the installed script).

The start of a run (pytest, the plugins, the config's models, the catalogue)
allocates a great deal and frees almost nothing: the cyclic garbage collector
is paused until the checks are about to run, where the run's plugin resumes it
(`synthetic.run_plugin`), after freezing what was built so far (shared with the
run's forked processes, and never worth a collection). A command that runs no
checks resumes it when it returns.
"""

from __future__ import annotations

import gc


def main() -> int:
    gc.disable()
    try:
        from synthetic.cli import main as command

        return command()
    finally:
        gc.enable()


if __name__ == "__main__":
    raise SystemExit(main())
