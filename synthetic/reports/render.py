"""A `Report` as text, markdown (pastes into a GitHub issue), html or json.

html is one self-contained file: inline CSS, the figures as inline SVG, no
script and nothing fetched from elsewhere; it prints (tables do not break
across a page where avoidable). Every string from the stores or the
catalogue is escaped on its way in (html) or its pipes escaped (markdown).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from synthetic.reports.document import Report, Section, Table
from synthetic.version import __version__


def render(report: Report, fmt: str) -> str:
    return {"text": text, "markdown": markdown, "html": page, "json": as_json}[fmt](report)


def as_json(report: Report) -> str:
    document: dict[str, Any] = {
        "schema": f"synthetic.report.{report.kind}/v1",
        "kind": report.kind,
        "environment": report.environment,
        **report.data,
        "not_recorded": list(report.not_recorded),
        "generator": f"synthetic {__version__}",
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def _header(report: Report) -> list[str]:
    return [
        f"Environment: {report.environment}",
        f"Period: {report.period}",
        f"Coverage: {report.coverage}",
    ]


def text(report: Report) -> str:
    out = [f"{report.title} ({report.environment})", "=" * 60, *_header(report)]
    for note in report.not_recorded:
        out.append(f"Not recorded: {note}")
    for section in report.sections:
        out += ["", section.title, "-" * len(section.title), *section.lines]
        if section.table is not None:
            out += _text_table(section.table) if section.table.rows else [section.empty]
    return "\n".join(out) + "\n"


def _text_table(table: Table) -> list[str]:
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    return [line(table.columns), line(["-" * w for w in widths]), *map(line, table.rows)]


def _md(cell: str) -> str:
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(report: Report) -> str:
    out = [f"## {_md(report.title)} ({_md(report.environment)})", ""]
    out += [f"- {_md(line)}" for line in _header(report)]
    if report.not_recorded:
        out += ["", "**Not recorded:**", ""]
        out += [f"- {_md(note)}" for note in report.not_recorded]
    for section in report.sections:
        out += ["", f"### {_md(section.title)}", ""]
        out += [_md(line) for line in section.lines]
        if section.lines:
            out.append("")
        if section.table is not None:
            if not section.table.rows:
                out.append(_md(section.empty))
                continue
            out.append("| " + " | ".join(map(_md, section.table.columns)) + " |")
            out.append("|" + "---|" * len(section.table.columns))
            out += ["| " + " | ".join(map(_md, row)) + " |" for row in section.table.rows]
    return "\n".join(out) + "\n"


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:2rem auto;
max-width:1100px;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.75rem 0 .5rem;
border-bottom:1px solid #d0d7de;padding-bottom:.25rem}
.meta{color:#57606a;margin:.1rem 0}.notes{background:#fff8c5;border:1px solid #d4a72c;
padding:.5rem 1rem;margin:1rem 0}.notes li{margin:.2rem 0}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr{break-inside:avoid}td.fig{width:1%;white-space:nowrap}
.v-broken,.v-too-tight,.v-yes{color:#cf222e;font-weight:600}.v-too-loose,.v-moved,.v-slow{color:#9a6700;
font-weight:600}.v-ok{color:#1a7f37}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
"""


def page(report: Report) -> str:
    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)} ({e(report.environment)})</title>",
        f"<style>{STYLE}</style></head>",
        f'<body data-report="{e(report.kind)}">',
        f"<h1>{e(report.title)}</h1>",
        *(f'<p class="meta">{e(line)}</p>' for line in _header(report)),
    ]
    if report.not_recorded:
        out.append('<div class="notes"><strong>Not recorded</strong><ul>')
        out += [f"<li>{e(note)}</li>" for note in report.not_recorded]
        out.append("</ul></div>")
    for section in report.sections:
        out.append(f"<section><h2>{e(section.title)}</h2>")
        out += _html_lines(section)
        if section.table is not None:
            out.append(_html_table(section) if section.table.rows else f"<p>{e(section.empty)}</p>")
        out.append("</section>")
    out.append(f'<p class="meta">synthetic {e(__version__)}</p></body></html>')
    return "\n".join(out) + "\n"


def _html_lines(section: Section) -> list[str]:
    out: list[str] = []
    bullets = [line[2:] for line in section.lines if line.startswith("- ")]
    out += [f"<p>{html.escape(line)}</p>" for line in section.lines if not line.startswith("- ")]
    if bullets:
        out.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in bullets) + "</ul>")
    return out


def _html_table(section: Section) -> str:
    table = section.table
    assert table is not None
    figures = list(table.figures)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    if figures:
        head += "<th>distribution</th>" if section.title == "Checks" else "<th></th>"
    rows = []
    for n, row in enumerate(table.rows):
        cells = "".join(
            f'<td class="v-{html.escape(cell.replace(" ", "-"))}">{html.escape(cell)}</td>'
            for cell in row
        )
        if figures:
            # The figures are SVG made by synthetic.reports.svg, every label escaped there.
            cells += f'<td class="fig">{figures[n] or ""}</td>'
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
