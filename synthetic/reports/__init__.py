"""``synthetic report KIND``: the guide's maintenance chores as reports.

Four reports, each computed from the history store (results per check per
round) and the alert store (standing incidents, silences, dead letters):

- `fatigue`: alerts per check and receiver, replayed from the history with
  the config's alert rules, ranked by noise, with suggestions;
- `thresholds`: each numeric check's values against its warning and critical
  levels: too loose, too tight;
- `uptime`: availability per endpoint and component, incidents, the error
  budget and its burn rates;
- `runbooks`: every runbook URL of the catalogue fetched; broken, moved,
  slow and duplicate links.

Each report is a pure function from loaded data (`synthetic.reports.data`)
to a `synthetic.reports.document.Report`, which the renderers turn into
text, markdown, html or json. The command wiring is `synthetic.reports.command`.
"""

from __future__ import annotations

KINDS = ("fatigue", "thresholds", "uptime", "runbooks")
FORMATS = ("text", "markdown", "html", "json")
