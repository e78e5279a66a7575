"""The run summary table, worst first: pure text from a `RunResult`."""

from __future__ import annotations

import textwrap

from synthetic.results import CheckResult, RunResult
from synthetic.units import format_value

COLUMNS = ("SEVERITY", "CHECK", "VALUE", "WARNING", "CRITICAL", "REASON")
_MAX = {"CHECK": 48, "VALUE": 18, "WARNING": 14, "CRITICAL": 14}


def _cells(check: CheckResult) -> tuple[str, ...]:
    value = "-" if check.value is None else format_value(check.value, check.unit)
    return (
        check.severity.value.upper(),
        short_id(check.id),
        value,
        check.warning or "-",
        check.critical or "-",
        check.reason,
    )


def short_id(node_id: str) -> str:
    """``checks/check_queues.py::check_x[a/b]`` as ``check_queues.py::check_x[a/b]``."""
    path, sep, rest = node_id.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def _fit(text: str, width: int) -> str:
    """``text`` in ``width`` characters, cut in the middle: a check id's start
    (its file) and end (its parameter) are the parts that tell checks apart."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def table(run: RunResult, *, width: int = 120) -> list[str]:
    """The summary as lines no wider than ``width``.

    The reason is the last column; when it does not fit there it goes on its
    own indented lines below the row, wrapped.
    """
    rows = [_cells(check) for check in run.worst_first()]
    widths = []
    for i, name in enumerate(COLUMNS[:-1]):
        longest = max([len(name), *(len(row[i]) for row in rows)])
        widths.append(min(longest, _MAX.get(name, longest)))
    reason_width = width - sum(widths) - 2 * len(widths)
    inline = reason_width >= max(len(row[-1]) for row in [COLUMNS, *rows])
    header = [name.ljust(w) for name, w in zip(COLUMNS, widths, strict=False)]
    lines = ["  ".join([*header, COLUMNS[-1]] if inline else header).rstrip()]
    for row in rows:
        cells = [_fit(cell, w).ljust(w) for cell, w in zip(row, widths, strict=False)]
        if inline:
            cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
        if not inline:
            # The reason is what on-call reads: wrapped, never cut.
            lines.extend(
                textwrap.wrap(
                    row[-1],
                    width,
                    initial_indent="    ",
                    subsequent_indent="      ",
                    break_on_hyphens=False,
                )
            )
    return lines


def headline(run: RunResult) -> str:
    counts = run.counts()
    parts = [f"{n} {name}" for name, n in counts.items() if n]
    target = f" ({run.target})" if run.target else ""
    return (
        f"{run.worst.value.upper()}: {run.environment}{target}: {', '.join(parts) or 'no checks'}"
    )
