"""The Allure HTML reports a person opens, rendered by the real command lines.

Allure 3 (npm `allure`) and Allure 2 (npm `allure-commandline`, on Java) are
installed by `.ci/run` into `.ci/tools`, Chromium from Debian. Each test makes
results with a real pytest run, generates the report, and checks what the
report shows: its generated data, and the page as headless Chromium renders
it (text of the DOM, and a screenshot).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Imported before pytester's in-process runs, which drop the modules they
# imported: an httpcore imported anew there would not be the one httpx maps.
import httpcore  # noqa: F401
import pytest

from tests.support.chromium import CHROMIUM_FLAGS, chromium, png_pixels
from tests.support.servers import http_ready, server_process

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / ".ci" / "tools" / "node_modules"
ALLURE3 = TOOLS / "allure" / "cli.js"
ALLURE2 = TOOLS / "allure-commandline" / "dist" / "bin" / "allure"

INI = """
[pytest]
python_files = check_*.py
python_functions = check_*
"""

CONFIG = """
[environments.staging]
base_url = "http://127.0.0.1:9/"
"""

CHECKS = """
import os
import pytest
from synthetic import Measurement, MeasurementError

@pytest.mark.metric("whmcs.queue_size", unit="requests", component="queues", priority="P2")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue():
    return Measurement(int(os.environ["QUEUE_SIZE"]), evidence={"queue": "email"})

@pytest.mark.metric("app.latency", unit="ms", priority="P4")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_latency():
    return 2500

@pytest.mark.metric("disk", unit="%", priority="P1")
@pytest.mark.critical("> 90%")
def check_disk():
    return 12.5

@pytest.mark.metric("health.status", component="bff", priority="P1")
@pytest.mark.critical("!= 'ok'")
def check_health(bff):
    return bff.json("/health")["status"]

@pytest.mark.metric("cache.hit_rate", unit="%")
@pytest.mark.critical("< 50%")
def check_cache():
    raise MeasurementError("INFO has no keyspace_hits")
"""

CATEGORY_OF = {
    "check_queue": "Critical breaches",
    "check_health": "Unreachable targets",
    "check_latency": "Warnings",
    "check_cache": "Broken checks",
}


def tool(path: Path, what: str) -> Path:
    if not path.is_file() or shutil.which("node") is None:
        message = f"{what} not installed ({path.relative_to(REPO)} or node missing)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: `bash .ci/run` installs it")
        pytest.skip(f"{message}; `bash .ci/run` installs it")
    return path


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("GITLAB_CI", "JENKINS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/portal")
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_RUN_NUMBER", "17")
    monkeypatch.setenv("GITHUB_WORKFLOW", "synthetic")
    monkeypatch.setenv("SYNTHETIC_TARGET_VERSION", "v2.4.1")
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic=CONFIG)
    pytester.makepyfile(check_all=CHECKS)
    return pytester


def run_checks(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, queue: int) -> Path:
    monkeypatch.setenv("QUEUE_SIZE", str(queue))
    project.runpytest("--env", "staging", "--alluredir=allure-results", "--alerts=off")
    return project.path / "allure-results"


def generate3(results: Path, output: Path, *, history: Path | None = None) -> Path:
    """Allure 3's `generate` with the categories synthetic wrote (and a history file)."""
    config = json.loads((results / "allurerc.json").read_text(encoding="utf-8"))
    if history is not None:
        config["historyPath"] = str(history)  # what the scheduled workflow adds
    config_path = output.parent / f"{output.name}.allurerc.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    node = shutil.which("node")
    assert node is not None
    options = ["--config", str(config_path), "--output", str(output)]
    done = subprocess.run(
        [node, str(tool(ALLURE3, "Allure 3")), "generate", str(results), *options],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=output.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def report3_results(report: Path) -> dict[str, dict[str, Any]]:
    return {
        data["name"]: data for data in map(read, (report / "data" / "test-results").glob("*.json"))
    }


def render(report: Path, tmp_path: Path, page: str, *, screenshot: Path | None = None) -> str:
    """The report served on loopback, opened in headless Chromium: the page's text."""
    browser = chromium()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory"]
    with server_process(
        "report server",
        lambda port: [*command, str(report), str(port)],
        ready=http_ready("http://127.0.0.1:{port}/index.html"),
        log=tmp_path / "http.log",
    ) as (port, _):
        what = f"--screenshot={screenshot}" if screenshot else "--dump-dom"
        profile = f"--user-data-dir={tmp_path / 'chromium'}"
        url = f"http://127.0.0.1:{port}/index.html{page}"
        done = subprocess.run(
            [browser, *CHROMIUM_FLAGS, profile, what, url],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return visible_text(done.stdout)


def visible_text(html: str) -> str:
    import re

    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_allure3_report_shows_categories_environment_and_executor(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    results = run_checks(project, monkeypatch, queue=57)
    report = generate3(results, tmp_path / "report")

    found = report3_results(report)
    assert {name: data["status"] for name, data in found.items()} == {
        "check_queue": "failed",
        "check_health": "failed",
        "check_latency": "passed",
        "check_disk": "passed",
        "check_cache": "broken",
    }
    for name, category in CATEGORY_OF.items():
        assert [c["name"] for c in found[name]["categories"]] == [category], name
    assert found["check_disk"]["categories"] == []
    environment = {e["name"]: e["values"] for e in read(report / "widgets/allure_environment.json")}
    assert environment["environment"] == ["staging"]
    assert environment["version"] == ["v2.4.1"]

    # What a person sees: the categories page with one check in each.
    text = render(report, tmp_path, "#/categories")
    for category in CATEGORY_OF.values():
        assert f"{category} 1" in text, text[:2000]
    overview = render(report, tmp_path, "")
    for seen in ("Failed 2", "Broken 1", "Passed 2", "version v2.4.1", "GitHub Actions"):
        assert seen in overview, overview[:2000]

    picture = tmp_path / "categories.png"
    render(report, tmp_path, "#/categories", screenshot=picture)
    width, height, pixels = png_pixels(picture)
    assert (width, height) == (1400, 1000)
    assert len(set(pixels)) > 20, "the screenshot is blank"


def test_allure2_report_groups_checks_in_categories(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if shutil.which("java") is None:
        pytest.fail("Allure 2 needs Java 17 (Debian openjdk-17-jre-headless; .ci/run installs it)")
    results = run_checks(project, monkeypatch, queue=57)
    report = tmp_path / "report2"
    done = subprocess.run(
        [str(tool(ALLURE2, "Allure 2")), "generate", "--clean", "-o", str(report), str(results)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tree = read(report / "data" / "categories.json")
    grouped = {
        category["name"]: sorted(
            check["name"] for message in category["children"] for check in message["children"]
        )
        for category in tree["children"]
    }
    assert grouped == {category: [name] for name, category in CATEGORY_OF.items()}
    environment = {e["name"]: e["values"] for e in read(report / "widgets" / "environment.json")}
    assert environment["target"] == ["http://127.0.0.1:9/"]
    executor = read(report / "widgets" / "executors.json")
    assert executor[0]["buildUrl"] == "https://github.com/acme/portal/actions/runs/4242"


def test_history_carries_the_trend_across_scheduled_runs(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    history = tmp_path / "allure-history" / "history.jsonl"
    history.parent.mkdir()
    first = run_checks(project, monkeypatch, queue=57)  # critical
    generate3(first, tmp_path / "report1", history=history)
    shutil.rmtree(first)
    second = run_checks(project, monkeypatch, queue=3)  # ok: the value changed
    report = generate3(second, tmp_path / "report2", history=history)

    queue = report3_results(report)["check_queue"]
    assert queue["status"] == "passed"
    # The same test in both runs, though its value parameter changed: its
    # history holds the first run's failure.
    assert [entry["status"] for entry in queue["history"]] == ["failed"]
    assert len(history.read_text(encoding="utf-8").splitlines()) == 2
