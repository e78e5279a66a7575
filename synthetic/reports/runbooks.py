"""``synthetic report runbooks``: every runbook link of the catalogue, fetched.

Broken (an error status, no answer within the timeout, more than five
redirects), moved (redirected to another site or scheme), slow (answered
after ``slow_s``) and duplicate links (one URL named by checks of different
components, often a copy and paste) are listed; the report's exit status is
1 when any link is broken.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from synthetic.reports.document import Report, Section, Table
from synthetic.reports.links import LinkResult
from synthetic.spec import CheckSpec

SCHEMA = "synthetic.report.runbooks/v1"
ORDER = {"broken": 0, "moved": 1, "slow": 2, "ok": 3}


def runbook_urls(specs: Sequence[CheckSpec]) -> dict[str, list[CheckSpec]]:
    """Each runbook URL and the checks naming it, in the order first named."""
    found: dict[str, list[CheckSpec]] = defaultdict(list)
    for spec in sorted(specs, key=lambda s: s.node_id):
        if spec.runbook:
            found[spec.runbook].append(spec)
    return dict(found)


def runbooks_report(
    environment: str, named: Mapping[str, Sequence[CheckSpec]], results: Sequence[LinkResult]
) -> Report:
    ordered = sorted(results, key=lambda r: (ORDER[r.verdict], r.url))
    rows = [
        (
            r.url,
            r.verdict,
            "-" if r.status is None else str(r.status),
            f"{r.elapsed_s:.2f} s",
            r.detail
            + (f" -> {r.final_url}" if r.final_url != r.url and r.verdict != "broken" else ""),
            str(len(named.get(r.url, ()))),
        )
        for r in ordered
    ]
    duplicates = [
        f"- {url}: named by {len(specs)} checks of components "
        + ", ".join(sorted({s.component or "(none)" for s in specs}))
        for url, specs in named.items()
        if len({s.component for s in specs}) > 1
    ]
    broken = [r for r in results if r.broken]
    counts = {v: sum(1 for r in results if r.verdict == v) for v in ORDER}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no links"
    sections = [
        Section(
            "Links",
            [f"{len(results)} links: {summary}."],
            Table(("url", "verdict", "status", "time", "detail", "checks"), rows),
            empty="No check names a runbook.",
        ),
        Section("Named by checks of several components", duplicates or ["None."]),
    ]
    data = {
        "links": [
            {
                "url": r.url,
                "verdict": r.verdict,
                "status": r.status,
                "final_url": r.final_url,
                "redirects": r.redirects,
                "elapsed_s": round(r.elapsed_s, 3),
                "detail": r.detail,
                "checks": [s.node_id for s in named.get(r.url, ())],
            }
            for r in ordered
        ],
        "counts": counts,
    }
    return Report(
        kind="runbooks",
        title="Runbook links",
        environment=environment,
        period="now",
        coverage="each link fetched once, now",
        sections=sections,
        data=data,
        exit_code=1 if broken else 0,
    )


def runbook_names(directory: Path) -> list[str]:
    """The runbooks the checks of ``directory`` name: each ``runbook="..."`` of a
    ``metric`` marker, read from the source (no import), sorted."""
    names: set[str] = set()
    for path in sorted(directory.glob("check_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue  # its collection reports it
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "metric":
                names.update(
                    k.value.value
                    for k in node.keywords
                    if k.arg == "runbook"
                    and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)
                    and k.value.value
                )
    return sorted(names)
