"""``synthetic generate TARGET... --out DIR [--check | --apply]``.

Collects the catalogue as ``synthetic list`` does (so the environment's
overrides apply), runs each target's generator and writes its files under
``--out``; ``--check`` writes nothing and exits 1 with a unified diff when the
files there differ (missing and extra files listed too), like a plan.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from synthetic.generate.model import Artifact, Catalogue, Generated


@dataclass(frozen=True)
class Options:
    """The settings of the artifacts that the catalogue does not hold."""

    stale_after_s: float = 600.0
    alertmanager: str = "localhost:9093"
    node_exporter: str = "localhost:9100"
    secrets_dir: str = "/etc/synthetic/secrets"


@dataclass(frozen=True)
class Target:
    module: str  # synthetic.generate.<module>, imported when used
    owns: tuple[str, ...]  # the files it writes under --out (globs): others are "extra"
    describe: str

    def generate(self, catalogue: Catalogue, options: Options) -> Generated:
        module = importlib.import_module(f"synthetic.generate.{self.module}")
        run: Callable[[Catalogue, Options], Generated] = module.generate_with
        return run(catalogue, options)


TARGETS = {
    "prometheus-rules": Target(
        "prometheus_rules",
        ("prometheus/rules.yml", "prometheus/rules.test.yml"),
        "alerting rules and their promtool unit tests",
    ),
    "prometheus-scrape": Target(
        "prometheus_scrape", ("prometheus/prometheus.yml",), "Prometheus scrape config"
    ),
    "alertmanager": Target(
        "alertmanager", ("alertmanager/alertmanager.yml",), "Alertmanager routes and receivers"
    ),
    "grafana": Target("grafana", ("grafana/*.json",), "Grafana dashboards"),
    "cloudwatch": Target(
        "cloudwatch", ("cloudwatch/alarms.yml",), "CloudWatch alarms (CloudFormation)"
    ),
    "datadog": Target("datadog", ("datadog/monitors.json",), "DataDog monitors (API JSON)"),
}
EXTRA_HINT = "pip install 'pytest-synthetic[generate]'"


def add_parser(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    from synthetic.cli import _duration

    parser = sub.add_parser(
        "generate",
        allow_abbrev=False,
        help="write the catalogue's dashboards, alert rules, routes, alarms and monitors",
        description="Generate monitoring config from the check catalogue: "
        + "; ".join(f"{name}: {t.describe}" for name, t in TARGETS.items())
        + ". --check compares instead of writing (exit 1 on drift).",
    )
    common(parser)
    parser.add_argument("targets", nargs="+", metavar="TARGET", choices=[*TARGETS, "all"])
    parser.add_argument("--out", required=True, metavar="DIR", help="where the files go")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when the files in --out differ",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help="cloudwatch: also put the alarms with PutMetricAlarm (boto3, the environment's "
        "exporters.cloudwatch_region / cloudwatch_endpoint_url)",
    )
    parser.add_argument(
        "--sns",
        action="append",
        default=[],
        metavar="RECEIVER=ARN",
        help="with --apply: the SNS topic of a receiver, for alarm and OK actions",
    )
    parser.add_argument(
        "--stale-after",
        type=_duration,
        default=Options.stale_after_s,
        metavar="DURATION",
        help="the dead man's rule fires when no run finished for this long (default 10m)",
    )
    parser.add_argument(
        "--alertmanager",
        default=Options.alertmanager,
        metavar="HOST:PORT",
        help="where Prometheus sends alerts (default localhost:9093)",
    )
    parser.add_argument(
        "--node-exporter",
        default=Options.node_exporter,
        metavar="HOST:PORT",
        help="node_exporter reading exporters.prometheus_textfile (default localhost:9100)",
    )
    parser.add_argument(
        "--secrets-dir",
        default=Options.secrets_dir,
        metavar="DIR",
        help="where Alertmanager and Prometheus read secrets from files "
        "(default /etc/synthetic/secrets)",
    )


def run(args: argparse.Namespace, passthrough: list[str]) -> int:
    from synthetic.cli import collect
    from synthetic.errors import CatalogueError

    names = list(TARGETS) if "all" in args.targets else list(dict.fromkeys(args.targets))
    if args.apply and "cloudwatch" not in names:
        return _fail("--apply puts CloudWatch alarms: name the cloudwatch target")
    try:
        specs, config = collect(args, passthrough)
    except CatalogueError as exc:
        sys.stderr.write(str(exc))
        return _fail("the catalogue could not be collected (see above)")
    if config is None:
        return _fail("no config was loaded")
    catalogue = Catalogue.from_config(specs, config)
    options = Options(
        stale_after_s=args.stale_after,
        alertmanager=args.alertmanager,
        node_exporter=args.node_exporter,
        secrets_dir=args.secrets_dir.rstrip("/") or "/",
    )
    results: dict[str, Generated] = {}
    for name in names:
        try:
            results[name] = TARGETS[name].generate(catalogue, options)
        except ImportError as exc:
            return _fail(f"{name}: {exc.name or exc} is not installed ({EXTRA_HINT})")
    for name, generated in results.items():
        for note in generated.notes:
            print(f"synthetic generate: {name}: note: {note}")
    out = Path(args.out)
    artifacts = [a for generated in results.values() for a in generated.artifacts]
    owned = tuple(pattern for name in names for pattern in TARGETS[name].owns)
    if args.check:
        return check(out, artifacts, owned)
    write(out, artifacts, owned)
    if args.apply:
        from synthetic.generate import cloudwatch

        return cloudwatch.apply_command(catalogue, args.sns)
    return 0


def write(out: Path, artifacts: Sequence[Artifact], owned: tuple[str, ...]) -> None:
    for artifact in artifacts:
        path = out / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(artifact.text, encoding="utf-8")
    print(f"synthetic generate: wrote {len(artifacts)} files to {out}")
    for extra in extra_files(out, artifacts, owned):
        print(f"synthetic generate: {out / extra} is no longer generated: remove it")


def check(out: Path, artifacts: Sequence[Artifact], owned: tuple[str, ...]) -> int:
    """0 when every file under ``out`` is as generated; else 1, with what differs."""
    drift = 0
    for artifact in artifacts:
        path = out / artifact.path
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"synthetic generate: missing: {path}")
            drift += 1
            continue
        if current != artifact.text:
            drift += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    artifact.text.splitlines(keepends=True),
                    fromfile=f"{path} (committed)",
                    tofile=f"{path} (generated)",
                )
            )
    for extra in extra_files(out, artifacts, owned):
        print(f"synthetic generate: extra: {out / extra} (no longer generated)")
        drift += 1
    if drift:
        print(
            f"synthetic generate: {drift} file(s) differ from the catalogue in {out}; "
            "run without --check to update them"
        )
        return 1
    print(f"synthetic generate: {len(artifacts)} files in {out} match the catalogue")
    return 0


def extra_files(out: Path, artifacts: Sequence[Artifact], owned: tuple[str, ...]) -> list[str]:
    expected = {artifact.path for artifact in artifacts}
    if not out.is_dir():
        return []
    present = (p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return sorted(
        path
        for path in present
        if path not in expected and any(fnmatchcase(path, pattern) for pattern in owned)
    )


def _fail(message: str) -> int:
    print(f"synthetic generate: error: {message}", file=sys.stderr)
    return 2
