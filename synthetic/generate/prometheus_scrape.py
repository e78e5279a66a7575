"""Target ``prometheus-scrape``: a Prometheus config that scrapes what the environment
exports, every 30 s as the guide says, loads ``rules.yml`` beside it and sends
alerts to ``--alertmanager``.

Jobs, each where the environment has it: the Pushgateway the exporter pushes
to (``honor_labels``, so the pushed ``environment`` and ``job`` stay), the
node_exporter (``--node-exporter``) whose textfile collector reads
``exporters.prometheus_textfile`` (only ``synthetic_*`` kept), and the BFF's
own ``metrics_url``. Passwords and bearer tokens are read from files under
``--secrets-dir``. The guide's sample job scrapes ``/health``, which answers
JSON that Prometheus cannot read: the exporters are what make it readable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from synthetic.generate.model import Artifact, Catalogue, Generated
from synthetic.generate.text import yaml_file

FILE = "prometheus/prometheus.yml"
GUIDE_SCRAPE_INTERVAL = "30s"  # "Configure health endpoint scraping (every 30s)"


def _target(url: str) -> tuple[dict[str, Any], str]:
    """A job's ``scheme`` and ``static_configs`` for ``url``, and its path."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    address = f"{host}:{parts.port}" if parts.port else host
    job = {"scheme": parts.scheme, "static_configs": [{"targets": [address]}]}
    return job, parts.path.rstrip("/")


def pushgateway_job(url: str, secrets_dir: str) -> dict[str, Any]:
    target, path = _target(url)
    job: dict[str, Any] = {
        "job_name": "synthetic-pushgateway",
        "honor_labels": True,
        "metrics_path": f"{path}/metrics",
        **target,
    }
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is not None or parts.password is not None:
        job["basic_auth"] = {
            "username": unquote(parts.username or ""),
            "password_file": f"{secrets_dir}/pushgateway.password",
        }
    return job


def textfile_job(node_exporter: str) -> dict[str, Any]:
    target, _ = _target(node_exporter)
    return {
        "job_name": "synthetic-textfile",
        **target,
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": "synthetic_.*", "action": "keep"}
        ],
    }


def bff_job(
    catalogue: Catalogue, url: str, secrets_dir: str, generated: Generated
) -> dict[str, Any]:
    target, path = _target(url)
    job_name = catalogue.presentation.scrape_job
    job: dict[str, Any] = {"job_name": job_name, "metrics_path": path or "/", **target}
    for name, value in sorted(catalogue.headers.items()):
        scheme, _, _ = value.partition(" ")
        if name.lower() == "authorization" and scheme:
            job["authorization"] = {
                "type": scheme,
                "credentials_file": f"{secrets_dir}/{job_name}.credentials",
            }
        else:
            generated.notes.append(
                f"header {name} of the environment is not sent: Prometheus 2.42 "
                "scrapes with no custom headers"
            )
    return job


def config(
    catalogue: Catalogue,
    *,
    alertmanager: str,
    node_exporter: str,
    secrets_dir: str,
    generated: Generated,
) -> dict[str, Any]:
    exporters = catalogue.exporters
    jobs = []
    if exporters.pushgateway_url:
        jobs.append(pushgateway_job(exporters.pushgateway_url, secrets_dir))
    if exporters.prometheus_textfile:
        jobs.append(textfile_job(node_exporter))
    if not jobs:
        generated.notes.append(
            f"environment {catalogue.environment} exports nothing to Prometheus "
            "(set exporters.pushgateway_url or exporters.prometheus_textfile): "
            "no synthetic job, so the rules have no data"
        )
    if catalogue.metrics_url:
        jobs.append(bff_job(catalogue, catalogue.metrics_url, secrets_dir, generated))
    manager, _ = _target(alertmanager)
    return {
        "global": {
            "scrape_interval": GUIDE_SCRAPE_INTERVAL,
            "evaluation_interval": GUIDE_SCRAPE_INTERVAL,
            "external_labels": {"environment": catalogue.environment},
        },
        "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [manager]},
        "scrape_configs": jobs,
    }


def generate(
    catalogue: Catalogue, *, alertmanager: str, node_exporter: str, secrets_dir: str
) -> Generated:
    generated = Generated()
    document = config(
        catalogue,
        alertmanager=alertmanager,
        node_exporter=node_exporter,
        secrets_dir=secrets_dir,
        generated=generated,
    )
    generated.artifacts.append(
        Artifact(FILE, yaml_file(catalogue.header, generated.notes, document))
    )
    return generated


def generate_with(catalogue: Catalogue, options: Any) -> Generated:
    return generate(
        catalogue,
        alertmanager=options.alertmanager,
        node_exporter=options.node_exporter,
        secrets_dir=options.secrets_dir,
    )
