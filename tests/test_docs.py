"""The manual, as a newcomer walks it: it builds, and every example in it works.

- ``mkdocs build --strict`` passes (every page in the nav, every link and anchor found);
- the configuration reference is what ``docs/gen_config_reference.py`` writes from
  the schema now;
- every ```toml block of the docs and the README loads through the config loader,
  in each environment it defines;
- every command of a ```bash / ```console block that runs ``synthetic`` is either
  run against the embedded sandbox (`RUNS`, with what the manual says it gives)
  or parsed by the command's own argument parser (`PARSED`); a new command
  example must be put in one of them;
- every ```python block runs with pytest against the sandbox: a check as a check
  file, a ``conftest.py`` (hooks) beside a check.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthetic.cli import build_parser
from synthetic.config import load_config
from synthetic.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), REPO / "README.md"]
SYNTHETIC = [sys.executable, "-m", "synthetic"]

_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.S | re.M
)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks(*langs: str) -> list[Block]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match["lang"] in langs:
                line = text.count("\n", 0, match.start()) + 1
                body = textwrap.dedent(match["body"])
                found.append(Block(page.relative_to(REPO).as_posix(), line, match["lang"], body))
    return found


def _commands(block: Block) -> list[str]:
    """The `synthetic` invocations of a shell block, one string each (its words joined)."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words: list[str] = []
        for word in [*lexer, "&&"]:
            if word in ("&&", "||", ";", "|"):
                if words and Path(words[0]).name == "synthetic":
                    found.append(shlex.join(["synthetic", *words[1:]]))
                words = []
            else:
                words.append(word)
    return found


TOML_BLOCKS = _blocks("toml")
PYTHON_BLOCKS = _blocks("python")
COMMANDS = sorted({c for b in _blocks("bash", "console", "sh") for c in _commands(b)})


# --- the build and the generated reference ----------------------------------------------


@pytest.mark.slow
def test_the_manual_builds_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "config-reference" / "index.html").is_file()


def test_every_page_is_in_the_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    listed = set(re.findall(r":\s*([\w-]+\.md)\s*$", nav, re.M))
    assert listed == {page.name for page in DOCS.glob("*.md")}


def test_the_config_reference_is_what_the_schema_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    path = DOCS / "gen_config_reference.py"
    spec = importlib.util.spec_from_file_location("gen_config_reference", path)
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, generator)  # its dataclasses look it up
    spec.loader.exec_module(generator)
    page = (DOCS / "config-reference.md").read_text(encoding="utf-8")
    assert page == generator.render(), "run: python docs/gen_config_reference.py"


def test_the_reference_names_keys_the_schema_has(tmp_path: Path) -> None:
    # An independent look at the page: a few keys every reader needs, and no key the
    # schema rejects (the loader is asked, not the generator).
    page = (DOCS / "config-reference.md").read_text(encoding="utf-8")
    for key in ("base_url", "timeout_s", "check_timeout_s", "run_timeout_s", "resolve_after"):
        assert f"`{key}`" in page
    with pytest.raises(Exception, match="not_a_key"):
        _load("[environments.x]\nnot_a_key = 1\n", tmp_path)


# --- TOML: every block is a config that loads -------------------------------------------


def _value(variable: str) -> str:
    """A value of the form a variable's name asks for."""
    for part, value in (("REDIS", "redis://127.0.0.1:6379/0"),
                        ("POSTGRES", "postgresql://monitor@127.0.0.1/portal"),
                        ("URL", "https://example.com")):  # fmt: skip
        if part in variable:
            return value
    return "value-of-" + variable.lower()


def _load(block: str, directory: Path) -> list[str]:
    """Load ``block`` as a config file in each environment it defines; their names."""
    data = tomllib.loads(block)
    name = "pyproject.toml" if "tool" in data else "synthetic.toml"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(block, encoding="utf-8")
    environ = {variable: _value(variable) for variable in _VARIABLE.findall(block)}
    section = data.get("tool", {}).get("synthetic", data)
    environments = sorted(section.get("environments", {})) or [None]
    for environment in environments:
        load_config(path=directory / name, environment=environment, environ=environ)
    return [e for e in environments if e]


def test_the_manual_has_config_examples() -> None:
    assert len(TOML_BLOCKS) >= 10
    assert any(b.page == "README.md" for b in TOML_BLOCKS)


@pytest.mark.parametrize("block", TOML_BLOCKS, ids=[b.where for b in TOML_BLOCKS])
def test_every_toml_block_is_a_config_that_loads(tmp_path: Path, block: Block) -> None:
    _load(block.text, tmp_path)


# --- commands: each one run against the sandbox, or parsed ------------------------------


@dataclass(frozen=True)
class Shell:
    """Where the run commands run: the sandbox, a results dir, the environment."""

    tmp: Path
    sandbox_url: str
    env: dict[str, str]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        argv = shlex.split(command)[1:]
        return subprocess.run(
            [*SYNTHETIC, *argv],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def results(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.tmp / "results" / "results.json").read_text())
        return document


def _ok(code: int) -> Callable[[Shell, subprocess.CompletedProcess[str]], None]:
    def check(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
        assert done.returncode == code, done.stdout[-3000:] + done.stderr[-3000:]

    return check


def _demo_healthy(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    severities = {c["severity"] for c in shell.results()["checks"]}
    assert severities <= {"ok", "skipped"}, severities


def _demo_backlog(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(2)(shell, done)  # the manual: "exit 2: whmcs.queue_size = 57 requests (critical > 50)"
    reasons = [c["reason"] for c in shell.results()["checks"]]
    assert "whmcs.queue_size = 57 requests (critical > 50)" in reasons


def _demo_down(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(2)(shell, done)
    http = [
        c
        for c in shell.results()["checks"]
        if c["id"].split("::")[0].endswith(("check_health.py", "check_queues.py"))
        and "bullmq" not in c["metric"]
    ]
    assert http
    assert all(c["severity"] == "critical" and "unreachable" in c["reason"] for c in http)


def _demo_malformed(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode in (2, 3), done.stdout[-3000:]
    counts = shell.results()["counts"]
    assert counts.get("unknown", 0) > 0, counts


def _listed(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    listed = json.loads(shell.run("synthetic list --json").stdout)
    assert f"{len(listed)} checks" in done.stdout
    assert all(c["metric"] in done.stdout for c in listed)


def _staging(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    document = shell.results()
    assert document["environment"] == "staging"
    assert document["target"] == shell.sandbox_url
    assert document["counts"].get("ok", 0) > 0


def _allure(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _staging(shell, done)
    properties = (REPO / "allure-results" / "environment.properties").read_text()
    assert "version=abc1234" in properties.replace(" ", "")


def _gate(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    assert "PASSED" in done.stdout + done.stderr
    assert shell.results()["environment"] == "production"


def _silenced(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    listed = shell.run("synthetic silence list")
    assert "metric=bullmq.*" in listed.stdout
    assert "queue migration" in listed.stdout


def _outbox(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    assert json.loads(done.stdout) == {"outbox": [], "dead_letters": []}


def _generated(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    assert (REPO / "monitoring" / "production" / "prometheus" / "rules.yml").is_file()


def _uptime(shell: Shell, done: subprocess.CompletedProcess[str]) -> None:
    _ok(0)(shell, done)
    assert done.stdout.startswith("Uptime and error budget (staging)")
    rounds = re.search(r"Coverage: history from .*, (\d+) rounds", done.stdout)
    assert rounds is not None, done.stdout[:2000]
    assert int(rounds[1]) >= 2  # the staging runs of the manual


# Run for real, in this order (a later command may read what an earlier one wrote),
# each with what the manual says it gives. The staging and production commands
# reach the sandbox through their ${..._BFF_URL}.
RUNS: dict[str, Callable[[Shell, subprocess.CompletedProcess[str]], None]] = {
    "synthetic demo": _demo_healthy,
    "synthetic demo --scenario whmcs-backlog": _demo_backlog,
    "synthetic demo --scenario down": _demo_down,
    "synthetic demo --scenario malformed": _demo_malformed,
    "synthetic list": _listed,
    "synthetic run --env staging": _staging,
    "synthetic run --env staging --alluredir allure-results --target-version abc1234": _allure,
    "synthetic gate --env production --settle 2m": _gate,
    "synthetic silence add --metric 'bullmq.*' --for 2h --reason 'queue migration'": _silenced,
    "synthetic silence list": _ok(0),
    "synthetic alerts outbox --json": _outbox,
    "synthetic alerts status --env production": _ok(0),
    "synthetic generate all --env production --out monitoring/production": _generated,
    "synthetic generate all --env production --out monitoring/production --check": _ok(0),
    # The runs above appended to the history (SYNTHETIC_HISTORY_URL, set below).
    "synthetic report uptime --env staging --since 7d": _uptime,
}
# Parsed only: they reach a real service (PagerDuty, AWS) or name an id of the reader's.
PARSED = {
    "synthetic alerts test --receiver pagerduty-oncall",
    # Sends: the shared store and the receivers of the reader's production.
    "synthetic run --env production --location ci-eu --alerts send",
    # Runs until stopped: tests/test_serve.py starts it against the sandbox and stops it.
    "synthetic serve --env sandbox",
    "synthetic serve --env production --every 30s --listen 127.0.0.1:9464",
    "synthetic silence remove s-3fa9c1",
    # Their history is the reader's (a production one); runbooks fetch real sites.
    "synthetic report fatigue --env production --timezone Europe/Berlin --working-hours 8-18 "
    "--format markdown --out fatigue.md",
    "synthetic report thresholds --env production --since 90d --format html --out thresholds.html",
    "synthetic report runbooks --env production --format json",
    "synthetic generate cloudwatch --env production --out monitoring/production --apply --sns "
    "'pagerduty-oncall=arn:aws:sns:...:oncall' --sns 'slack-ops=arn:aws:sns:...:ops'",
}
# Shell substitutions in the manual, and what the test runs instead.
SUBSTITUTIONS = {"'$(git rev-parse --short HEAD)'": "abc1234"}


def _normal(command: str) -> str:
    for written, value in SUBSTITUTIONS.items():
        command = command.replace(written, value)
    return shlex.join(shlex.split(command))


def test_every_command_of_the_manual_is_run_or_parsed() -> None:
    written = {_normal(c) for c in COMMANDS}
    known = {_normal(c) for c in [*RUNS, *PARSED]}
    assert written - known == set(), "put each new command example in RUNS or PARSED"
    assert known - written == set(), "these are no longer in the manual"


@pytest.mark.parametrize("command", sorted(PARSED))
def test_a_parsed_command_is_accepted_by_the_parser(command: str) -> None:
    args, rest = build_parser().parse_known_args(shlex.split(command)[1:])
    assert rest == []
    assert args.command == shlex.split(command)[1]


@pytest.mark.slow
def test_the_run_commands_give_what_the_manual_says(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    leftovers = [REPO / "allure-results", REPO / "monitoring"]
    assert not any(p.exists() for p in leftovers), "the test would overwrite these"
    try:
        with Sandbox("healthy") as sandbox:
            url = sandbox.url.rstrip("/")
            environ |= {
                "SYNTHETIC_RESULTS_DIR": str(tmp_path / "results"),
                "STAGING_BFF_URL": url,
                "STAGING_MONITOR_TOKEN": "docs-test-token",
                "PRODUCTION_BFF_URL": url,
                "PRODUCTION_MONITOR_TOKEN": "docs-test-token",
                "SYNTHETIC_HISTORY_URL": str(tmp_path / "history.db"),
            }
            shell = Shell(tmp_path, url, environ)
            for command, expect in RUNS.items():
                done = shell.run(command)
                try:
                    expect(shell, done)
                except AssertionError as exc:
                    raise AssertionError(f"{command}: {exc}") from None
    finally:
        for path in leftovers:
            subprocess.run(["rm", "-rf", str(path)], check=True)


# --- Python: every block runs with pytest against the sandbox ---------------------------

_CHECK_CONFIG = """\
checks = ["checks"]

[environments.sandbox]
base_url = "{url}"

[alerts.receivers.slack-ops]
type = "slack"
url = "https://hooks.slack.example/services/T0/B0/docs"

[[alerts.routes]]
receiver = "slack-ops"
severity = "critical"
"""

_A_CHECK = """\
import pytest


@pytest.mark.metric("docs.queue", unit="requests")
@pytest.mark.critical("> 50")
def check_docs_queue(queues):
    return queues["whmcs"]["metrics"]["queueSize"]
"""


def test_the_manual_has_python_examples() -> None:
    kinds = {"check" if "def check_" in b.text else "conftest" for b in PYTHON_BLOCKS}
    assert kinds == {"check", "conftest"}


@pytest.mark.slow
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_every_python_block_runs_against_the_sandbox(tmp_path: Path, block: Block) -> None:
    """A check block is a check file; any other block is the conftest.py of a check.

    Both run beside the portal catalogue's conftest.py (its ``queues`` snapshot),
    against the sandbox's whmcs-backlog scenario: the WHMCS queue holds 57."""
    checks = tmp_path / "checks"
    checks.mkdir()
    conftest = (REPO / "checks" / "conftest.py").read_text(encoding="utf-8")
    if "def check_" in block.text:
        (checks / "check_example.py").write_text(block.text, encoding="utf-8")
    else:
        (checks / "check_example.py").write_text(_A_CHECK, encoding="utf-8")
        conftest += "\n\n" + block.text
    (checks / "conftest.py").write_text(conftest, encoding="utf-8")
    with Sandbox("whmcs-backlog") as sandbox:
        (tmp_path / "synthetic.toml").write_text(_CHECK_CONFIG.format(url=sandbox.url.rstrip("/")))
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
        done = subprocess.run(
            [*SYNTHETIC, "run", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output  # CRITICAL: 57 > 50
    results = json.loads((tmp_path / "synthetic-results" / "results.json").read_text())
    assert results["complete"], results["errors"]
    [check] = results["checks"]
    assert check["value"] == 57
    assert check["severity"] == "critical"
    if "pytest_synthetic_alert_payload" in block.text:
        # The example prefixes a critical Slack message with <!here>.
        [payload] = (tmp_path / "synthetic-results" / "alerts").glob("*slack-ops*.json")
        assert json.loads(payload.read_text())["request"]["json"]["text"].startswith("<!here> ")
