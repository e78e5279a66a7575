"""Target ``alertmanager``: the ``[alerts]`` routes and receivers as Alertmanager config.

The route tree is the config's routes in order (Alertmanager, like
`synthetic.alerts.decide.receivers_for`, takes the first match unless a route
says ``continue``); a route's globs become anchored regular expressions. The
root receiver has no integration: an alert no route matches goes nowhere, as
in synthetic's own routing. Grouped by the check; a check's critical alert
inhibits its own warning.

Secrets are never written: PagerDuty routing keys, Slack webhook URLs and SMTP
passwords are read from files under ``--secrets-dir`` (``*_file`` settings),
named ``<receiver>.<key>``. Alertmanager 0.25 reads a webhook URL only inline,
so a webhook whose URL holds a secret is left without integration, with a note.
"""

from __future__ import annotations

from typing import Any

from synthetic.alerts.settings import PAGERDUTY_EVENTS_URL, Receiver, Route
from synthetic.generate.model import Artifact, Catalogue, Generated
from synthetic.generate.text import duration, glob_regex, is_glob, promql_string, yaml_file

FILE = "alertmanager/alertmanager.yml"
UNROUTED = "synthetic-unrouted"
GROUP_BY = ["alertname", "environment", "check"]


def matchers(route: Route) -> list[str]:
    """The route's matchers in Alertmanager's syntax (``severity="critical"``)."""
    found = []
    for name, patterns in sorted(route.matchers.items()):
        if len(patterns) == 1 and not is_glob(patterns[0]):
            found.append(f"{name}={promql_string(patterns[0])}")
        else:
            regex = "|".join(glob_regex(p) for p in patterns)
            found.append(f"{name}=~{promql_string(regex)}")
    return found


def secret_file(secrets_dir: str, receiver: str, key: str) -> str:
    return f"{secrets_dir}/{receiver}.{key}"


def receiver_config(
    receiver: Receiver, catalogue: Catalogue, secrets_dir: str, generated: Generated
) -> dict[str, Any]:
    name = receiver.name
    config: dict[str, Any] = {"name": name}
    if receiver.type == "pagerduty":
        pagerduty: dict[str, Any] = {
            "routing_key_file": secret_file(secrets_dir, name, "routing_key"),
            "send_resolved": True,
        }
        if receiver.url and receiver.url != PAGERDUTY_EVENTS_URL:
            pagerduty["url"] = receiver.url
        config["pagerduty_configs"] = [pagerduty]
    elif receiver.type == "slack":
        config["slack_configs"] = [
            {"api_url_file": secret_file(secrets_dir, name, "url"), "send_resolved": True}
        ]
    elif receiver.type == "email":
        config["email_configs"] = [_email(receiver, catalogue, secrets_dir, generated)]
    elif receiver.type == "webhook" and receiver.url and not catalogue.holds_secret(receiver.url):
        config["webhook_configs"] = [{"url": receiver.url, "send_resolved": True}]
    elif receiver.type == "webhook":
        generated.notes.append(
            f"receiver {name}: a webhook URL that holds a secret cannot be written "
            "(Alertmanager 0.25 has no url_file): it has no integration here"
        )
    else:
        what = {
            "alertmanager": "it is an Alertmanager itself",
            "custom": "a plugin delivers it",
        }.get(receiver.type, receiver.type)
        generated.notes.append(f"receiver {name}: {what}: it has no integration here")
    return config


def _email(
    receiver: Receiver, catalogue: Catalogue, secrets_dir: str, generated: Generated
) -> dict[str, Any]:
    host = receiver.smtp_host or ""
    email: dict[str, Any] = {
        "to": ", ".join(receiver.email_to),
        "from": receiver.email_from or "",
        "smarthost": f"{host}:{receiver.smtp_port}",
        "send_resolved": True,
        # Alertmanager speaks implicit TLS by itself on port 465 ("ssl").
        "require_tls": receiver.smtp_tls != "none",
    }
    if not host:
        generated.notes.append(
            f"receiver {receiver.name}: smtp_host is not set here: the smarthost has no host"
        )
    username = receiver.smtp_username
    if username and not catalogue.holds_secret(username):
        email["auth_username"] = username
    elif username:
        generated.notes.append(
            f"receiver {receiver.name}: smtp_username holds a secret: not written"
        )
    if receiver.smtp_password or username:
        email["auth_password_file"] = secret_file(secrets_dir, receiver.name, "smtp_password")
    return email


def config(catalogue: Catalogue, secrets_dir: str, generated: Generated) -> dict[str, Any]:
    settings = catalogue.alerts
    routes = []
    for route in settings.routes:
        entry: dict[str, Any] = {"receiver": route.receiver, "matchers": matchers(route)}
        if route.continue_:
            entry["continue"] = True
        remind = settings.receivers[route.receiver].remind_every_s
        if remind:  # the receiver's reminder of a standing alert
            entry["repeat_interval"] = duration(remind)
        routes.append(entry)
    receivers = [{"name": UNROUTED}] + [
        receiver_config(settings.receivers[name], catalogue, secrets_dir, generated)
        for name in sorted(settings.receivers)
    ]
    root: dict[str, Any] = {"receiver": UNROUTED, "group_by": list(GROUP_BY), "routes": routes}
    return {
        "route": root,
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": list(GROUP_BY),
            }
        ],
        "receivers": receivers,
    }


def generate(catalogue: Catalogue, *, secrets_dir: str) -> Generated:
    generated = Generated()
    if not catalogue.alerts.routes:
        generated.notes.append("no [alerts] routes: every alert goes to no receiver")
    document = config(catalogue, secrets_dir, generated)
    generated.artifacts.append(
        Artifact(FILE, yaml_file(catalogue.header, generated.notes, document))
    )
    return generated


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(catalogue, secrets_dir=options.secrets_dir)
