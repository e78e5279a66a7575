"""The plugin end to end, in-process with pytester: markers, outcomes, exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

INI = """
[pytest]
python_files = check_*.py test_*.py
python_functions = check_* test_*
"""

CHECKS = """
import pytest
from synthetic import Measurement

@pytest.mark.metric("whmcs.queue_size", unit="requests", component="queues",
                    runbook="queue-management", priority="P2")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue_critical():
    return 57

@pytest.mark.metric("app.latency", unit="ms")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_latency_warning():
    return 2500

@pytest.mark.critical("> 5")
def check_returns_none():
    return None

@pytest.mark.metric("disk", unit="%")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 90%")
def check_disk_ok():
    return Measurement(12.5, evidence={"df": "12.5%"})

def test_ordinary():
    assert 1 + 1 == 2
"""


@pytest.fixture
def checks(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic="")  # a project using synthetic has a config
    return pytester


def results(pytester: pytest.Pytester, results_dir: str = "synthetic-results") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / results_dir / "results.json").read_text(encoding="utf-8")
    )
    return document


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"].split("::", 1)[1]: c for c in document["checks"]}


def test_markers_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.metric(id=None, *, unit=None, component=None, runbook=None, *",
            "@pytest.mark.warning(expr): the WARNING condition*",
            "@pytest.mark.critical(expr): the CRITICAL condition, evaluated before WARNING*",
        ]
    )


def test_outcomes_letters_and_counts(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_portal=CHECKS)
    result = checks.runpytest()
    assert result.parseoutcomes() == {"failed": 1, "passed": 2, "warned": 1, "unknown": 1}
    result.stdout.fnmatch_lines(["check_portal.py FWU.. *"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_verbose_words(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_portal=CHECKS)
    result = checks.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*::check_queue_critical CRITICAL*",
            "*::check_latency_warning WARNING*",
            "*::check_returns_none UNKNOWN*",
            "*::check_disk_ok OK*",
            "*::test_ordinary PASSED*",
        ]
    )


def test_reasons_are_one_human_line(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_portal=CHECKS)
    checks.runpytest()
    found = by_name(results(checks))
    assert found["check_queue_critical"]["reason"] == (
        "whmcs.queue_size = 57 requests (critical > 50)"
    )
    assert found["check_latency_warning"]["reason"] == "app.latency = 2500 ms (warning > 2s)"
    assert found["check_returns_none"]["reason"] == (
        "returns_none: no value (the check returned None)"
    )
    assert found["check_disk_ok"]["reason"] == "disk = 12.5% (ok)"


def test_results_json_schema(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_portal=CHECKS)
    checks.runpytest()
    document = results(checks)
    assert document["schema"] == "synthetic.results/v1"
    assert document["environment"] == "sandbox"
    assert document["worst"] == "critical"
    assert document["counts"] == {"skipped": 0, "ok": 1, "warning": 1, "unknown": 1, "critical": 1}
    for key in ("run_id", "target", "started_at", "finished_at"):
        assert document[key]
    assert document["started_at"] <= document["finished_at"]
    # Worst first; the ordinary test is not a check.
    assert [c["severity"] for c in document["checks"]] == ["critical", "unknown", "warning", "ok"]
    queue = by_name(document)["check_queue_critical"]
    assert queue == {
        "id": "check_portal.py::check_queue_critical",
        "metric": "whmcs.queue_size",
        "component": "queues",
        "value": 57,
        "unit": "requests",
        "severity": "critical",
        "warning": "> 10",
        "critical": "> 50",
        "reason": "whmcs.queue_size = 57 requests (critical > 50)",
        "runbook": "queue-management",
        "priority": "P2",
        "duration_ms": queue["duration_ms"],
        "labels": {},
        "evidence": None,
        "sustain_s": 0.0,
        "reaches": [],
        "depends_on": [],
        "unreachable": None,
    }
    assert queue["duration_ms"] >= 0
    assert by_name(document)["check_disk_ok"]["evidence"] == {"df": "12.5%"}


def test_summary_table_worst_first(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_portal=CHECKS)
    result = checks.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*synthetic summary*",
            "SEVERITY*CHECK*VALUE*WARNING*CRITICAL*",
            "CRITICAL*check_portal.py::check_queue_critical*57 requests*> 10*> 50*",
            "UNKNOWN*check_portal.py::check_returns_none*",
            "WARNING*check_portal.py::check_latency_warning*2500 ms*> 2s*> 5s*",
            "OK*check_portal.py::check_disk_ok*12.5%*",
            "CRITICAL: sandbox *: 1 ok, 1 warning, 1 unknown, 1 critical",
        ]
    )


def test_critical_is_evaluated_before_warning(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_both="""
        import pytest
        @pytest.mark.warning("> 1")
        @pytest.mark.critical("> 2")
        def check_both():
            return 100
        """
    )
    checks.runpytest()
    assert results(checks)["checks"][0]["severity"] == "critical"


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        ("raise KeyError('queueSize')", "could not measure: KeyError: 'queueSize'"),
        ("return {'a': 1}", "returned a dict"),
        ("return True", "returned a bool (True)"),
        ("return float('nan')", "NaN"),
        ("return 'ok'", "value 'ok' is not a number"),
        (
            "from synthetic import MeasurementError; raise MeasurementError('no whmcs key')",
            "no whmcs key",
        ),
    ],
)
def test_unknown_when_the_check_cannot_measure(
    checks: pytest.Pytester, body: str, reason_part: str
) -> None:
    checks.makepyfile(
        check_unknown=f"""
        import pytest
        @pytest.mark.critical("> 5")
        def check_it():
            {body}
        """
    )
    result = checks.runpytest()
    assert result.parseoutcomes() == {"unknown": 1}
    check = results(checks)["checks"][0]
    assert check["severity"] == "unknown"
    assert reason_part in check["reason"]
    assert "\n" not in check["reason"]


def test_unreachable_is_critical_unless_the_check_says_otherwise(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_net="""
        import httpx, pytest

        def refuse():
            request = httpx.Request("GET", "http://127.0.0.1:9/health")
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

        @pytest.fixture
        def snapshot():
            refuse()

        @pytest.mark.critical("> 5")
        def check_in_body():
            refuse()

        @pytest.mark.critical("> 5")
        def check_in_fixture(snapshot):
            return 1

        @pytest.mark.metric("soft", unreachable="unknown")
        @pytest.mark.critical("> 5")
        def check_soft():
            refuse()

        @pytest.mark.critical("> 5")
        def check_timeout():
            raise TimeoutError("timed out")
        """
    )
    result = checks.runpytest("-v")
    found = by_name(results(checks))
    assert found["check_in_body"]["severity"] == "critical"
    assert found["check_in_body"]["reason"] == (
        "in_body: unreachable: ConnectError: [Errno 111] Connection refused "
        "(GET http://127.0.0.1:9/health)"
    )
    assert found["check_in_fixture"]["severity"] == "critical"
    assert "unreachable" in found["check_in_fixture"]["reason"]
    assert found["check_soft"]["severity"] == "unknown"
    assert found["check_timeout"]["severity"] == "critical"
    # A fixture's failure is shown as the check's outcome, not as a pytest ERROR.
    result.stdout.fnmatch_lines(["*::check_in_fixture CRITICAL*"])
    assert "error" not in result.parseoutcomes()


def test_skips_carry_their_reason(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_skip="""
        import pytest

        @pytest.mark.critical("> 5")
        def check_skipped():
            pytest.skip("redis_url is not configured")

        @pytest.mark.critical("> 5")
        def check_not_configured(synthetic_env):
            return synthetic_env.require("redis_url")
        """
    )
    result = checks.runpytest()
    assert result.parseoutcomes() == {"skipped": 2}
    found = by_name(results(checks))
    assert found["check_skipped"]["reason"] == "redis_url is not configured"
    assert found["check_not_configured"]["severity"] == "skipped"
    assert found["check_not_configured"]["reason"] == (
        "not_configured: skipped: redis_url is not configured for environment 'sandbox'"
    )


def test_ordinary_tests_are_left_alone(checks: pytest.Pytester) -> None:
    checks.makepyfile(test_plain="def test_a():\n    assert True\n")
    result = checks.runpytest()
    result.assert_outcomes(passed=1)
    assert not (checks.path / "synthetic-results").exists()
    assert "synthetic summary" not in result.stdout.str()


def test_a_test_with_a_marker_is_a_check(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        test_marked="""
        import pytest
        @pytest.mark.warning("> 1")
        def test_marked():
            return 2
        """
    )
    result = checks.runpytest()
    assert result.parseoutcomes() == {"warned": 1}


@pytest.mark.parametrize(
    ("decorators", "message"),
    [
        (
            '@pytest.mark.critical(">> 50")',
            "check_bad.py::check_it: @pytest.mark.critical: *>> 50*",
        ),
        (
            '@pytest.mark.metric("x", unit="requests")\n@pytest.mark.critical("> 2s")',
            "check_bad.py::check_it: @pytest.mark.critical: *2s*",
        ),
        (
            '@pytest.mark.metric("x")',
            "check_bad.py::check_it: a check needs a @pytest.mark.critical or "
            "@pytest.mark.warning threshold",
        ),
        (
            '@pytest.mark.metric("x", colour="red")\n@pytest.mark.critical("> 1")',
            "check_bad.py::check_it: @pytest.mark.metric: unknown argument(s) colour",
        ),
        (
            '@pytest.mark.metric("x", priority="urgent")\n@pytest.mark.critical("> 1")',
            "check_bad.py::check_it: @pytest.mark.metric: priority 'urgent' is not P1..P4",
        ),
        (
            '@pytest.mark.metric("x", unreachable="ignore")\n@pytest.mark.critical("> 1")',
            "check_bad.py::check_it: @pytest.mark.metric: unreachable='ignore' is not one of*",
        ),
    ],
)
def test_bad_markers_stop_the_session_at_collection(
    checks: pytest.Pytester, decorators: str, message: str
) -> None:
    checks.makepyfile(
        check_bad=f"import pytest\n\n{decorators}\ndef check_it():\n    return 1\n"
        "\n\ndef check_other():\n    return 1\n"
    )
    result = checks.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting check_bad.py*", message])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_unit_conversion_of_measurements(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_units="""
        import pytest
        from synthetic import Measurement

        @pytest.mark.metric("latency", unit="ms")
        @pytest.mark.critical("> 200ms")
        def check_seconds():
            return Measurement(0.25, unit="s")

        @pytest.mark.metric("latency2", unit="ms")
        @pytest.mark.critical("> 200")
        def check_bad_unit():
            return Measurement(3, unit="requests")
        """
    )
    checks.runpytest()
    found = by_name(results(checks))
    assert found["check_seconds"]["value"] == 250
    assert found["check_seconds"]["reason"] == "latency = 250 ms (critical > 200ms)"
    assert found["check_bad_unit"]["severity"] == "unknown"


def test_callable_predicates_and_nagios_ranges(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_forms="""
        import pytest

        def too_many(value):
            return value > 3

        # A named function needs with_args (pytest would take it as the decorated
        # function); a lambda can be passed directly.
        @pytest.mark.critical.with_args(too_many)
        def check_predicate():
            return 4

        @pytest.mark.critical("@10:20")
        def check_inside():
            return 10

        @pytest.mark.warning("10:")
        def check_below():
            return 9.5

        @pytest.mark.critical(lambda v: 1 / 0)
        def check_predicate_raises():
            return 1
        """
    )
    checks.runpytest()
    found = by_name(results(checks))
    assert found["check_predicate"]["severity"] == "critical"
    assert found["check_predicate"]["critical"] == "predicate:too_many"
    assert found["check_inside"]["severity"] == "critical"
    assert found["check_below"]["severity"] == "warning"
    assert found["check_predicate_raises"]["severity"] == "unknown"
    assert "ZeroDivisionError" in found["check_predicate_raises"]["reason"]


def test_module_metric_marker_gives_defaults(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_module="""
        import pytest
        pytestmark = pytest.mark.metric(component="queues", runbook="https://rb/q", priority="P2")

        @pytest.mark.metric("a.b", unit="jobs")
        @pytest.mark.critical("> 5")
        def check_one():
            return 1

        @pytest.mark.metric("a.c", priority="P1")
        @pytest.mark.critical("> 5")
        def check_two():
            return 1
        """
    )
    checks.runpytest()
    found = by_name(results(checks))
    assert (found["check_one"]["component"], found["check_one"]["priority"]) == ("queues", "P2")
    assert found["check_one"]["runbook"] == "https://rb/q"
    assert found["check_two"]["priority"] == "P1"


def test_parametrized_checks_get_labels(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_params="""
        import pytest

        @pytest.mark.parametrize("queue", ["email", "provisioning"])
        @pytest.mark.metric("bullmq.waiting", unit="jobs")
        @pytest.mark.warning("> 10")
        def check_waiting(queue):
            return {"email": 3, "provisioning": 12}[queue]
        """
    )
    checks.runpytest()
    found = by_name(results(checks))
    assert found["check_waiting[provisioning]"]["labels"] == {"queue": "provisioning"}
    assert found["check_waiting[provisioning]"]["reason"] == (
        'bullmq.waiting{queue="provisioning"} = 12 jobs (warning > 10)'
    )


def test_async_checks_are_awaited(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_async="""
        import asyncio, pytest

        @pytest.mark.critical("> 5")
        async def check_async():
            await asyncio.sleep(0)
            return 7
        """
    )
    checks.runpytest()
    assert results(checks)["checks"][0]["severity"] == "critical"


# -- exit status -------------------------------------------------------------------------------

LEVELS = """
import pytest

@pytest.mark.warning("> 1")
def check_warn():
    return 2
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], pytest.ExitCode.OK),
        (["--fail-on", "warning"], pytest.ExitCode.TESTS_FAILED),
        (["--fail-on", "unknown"], pytest.ExitCode.OK),
        (["--fail-on", "never"], pytest.ExitCode.OK),
    ],
)
def test_fail_on_decides_the_exit_status_for_warnings(
    checks: pytest.Pytester, args: list[str], expected: pytest.ExitCode
) -> None:
    checks.makepyfile(check_levels=LEVELS)
    assert checks.runpytest(*args).ret == expected


@pytest.mark.parametrize(
    ("fail_on", "severity_body", "expected"),
    [
        ("critical", "return 100", pytest.ExitCode.TESTS_FAILED),
        ("never", "return 100", pytest.ExitCode.OK),
        ("critical", "return None", pytest.ExitCode.OK),
        ("unknown", "return None", pytest.ExitCode.TESTS_FAILED),
        ("unknown", "return 100", pytest.ExitCode.TESTS_FAILED),
    ],
)
def test_fail_on_for_critical_and_unknown(
    checks: pytest.Pytester, fail_on: str, severity_body: str, expected: pytest.ExitCode
) -> None:
    checks.makepyfile(
        check_levels=f"""
        import pytest
        @pytest.mark.critical("> 50")
        def check_it():
            {severity_body}
        """
    )
    assert checks.runpytest("--fail-on", fail_on).ret == expected


def test_fail_on_from_environment_and_ini(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks.makepyfile(check_levels=LEVELS)
    checks.makeini(INI + "synthetic_fail_on = warning\n")
    assert checks.runpytest().ret == pytest.ExitCode.TESTS_FAILED
    monkeypatch.setenv("SYNTHETIC_FAIL_ON", "never")
    assert checks.runpytest().ret == pytest.ExitCode.OK  # env beats ini
    assert checks.runpytest("--fail-on", "warning").ret == pytest.ExitCode.TESTS_FAILED


def test_bad_fail_on_from_environment_is_a_usage_error(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks.makepyfile(check_levels=LEVELS)
    monkeypatch.setenv("SYNTHETIC_FAIL_ON", "sometimes")
    result = checks.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: SYNTHETIC_FAIL_ON: 'sometimes' is not one of *"])


def test_ordinary_failures_still_fail_the_run(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_mixed="""
        import pytest
        @pytest.mark.critical("> 5")
        def check_fine():
            return 1

        def test_broken():
            assert False
        """
    )
    assert checks.runpytest("--fail-on", "never").ret == pytest.ExitCode.TESTS_FAILED


def test_results_dir_option(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_levels=LEVELS)
    checks.runpytest("--results-dir", "out/run1")
    assert results(checks, "out/run1")["worst"] == "warning"


# -- configuration -----------------------------------------------------------------------------


def test_thresholds_overridden_per_environment(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_queue="""
        import pytest
        @pytest.mark.metric("whmcs.queue_size", unit="requests")
        @pytest.mark.warning("> 10")
        @pytest.mark.critical("> 50")
        def check_queue():
            return 57
        """
    )
    checks.makefile(
        ".toml",
        synthetic="""
        [environments.production]
        base_url = "http://127.0.0.1:9"
        [environments.production.thresholds."whmcs.queue_size"]
        critical = "> 100"
        [environments.busy.thresholds."whmcs.queue_size"]
        critical = false
        warning = "> 1000"
        """,
    )
    checks.runpytest("--env", "sandbox")
    assert results(checks)["checks"][0]["severity"] == "critical"
    checks.runpytest("--env", "production")
    check = results(checks)["checks"][0]
    assert (check["severity"], check["critical"]) == ("warning", "> 100")
    assert results(checks)["environment"] == "production"
    checks.runpytest("--env", "busy")
    check = results(checks)["checks"][0]
    assert (check["severity"], check["critical"], check["warning"]) == ("ok", None, "> 1000")


def test_bad_override_names_the_config_key(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_levels=LEVELS.replace("@pytest", '@pytest.mark.metric("m")\n@pytest', 1)
    )
    checks.makefile(
        ".toml",
        synthetic='[environments.sandbox.thresholds."m"]\nwarning = "about 5"\n',
    )
    result = checks.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*check_levels.py::check_warn: *synthetic.toml: "
            'environments.sandbox.thresholds."m".warning: *about 5*'
        ]
    )


def test_config_errors_are_one_line_usage_errors(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_levels=LEVELS)
    checks.makefile(".toml", synthetic="[environments.sandbox]\ntimeout_s = 'slow'\n")
    result = checks.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *synthetic.toml: environments.sandbox.timeout_s: *"])
    checks.makefile(".toml", synthetic="[environments.sandbox]\ntimeout_s = 3\n")
    result = checks.runpytest("--env", "nowhere")
    result.stderr.fnmatch_lines(["ERROR: *environment 'nowhere' is not defined (defined: sandbox)"])


def test_config_errors_do_not_break_help(checks: pytest.Pytester) -> None:
    checks.makefile(".toml", synthetic="this is not toml")
    assert checks.runpytest("--markers").ret == pytest.ExitCode.OK


def test_runbooks_resolve_through_the_config(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_rb="""
        import pytest
        @pytest.mark.metric("q", runbook="queue-management")
        @pytest.mark.critical("> 5")
        def check_named():
            return 1

        @pytest.mark.metric("d", runbook="database-operations")
        @pytest.mark.critical("> 5")
        def check_linked():
            return 1
        """
    )
    checks.makefile(
        ".toml",
        synthetic="""
        [runbooks]
        base_url = "https://wiki.example.com/runbooks/"
        links = { database-operations = "https://db.example.com/ops" }
        """,
    )
    checks.runpytest()
    found = by_name(results(checks))
    assert found["check_named"]["runbook"] == "https://wiki.example.com/runbooks/queue-management"
    assert found["check_linked"]["runbook"] == "https://db.example.com/ops"


def test_secrets_never_reach_output_or_results(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok-9f8e7d6c5b4a"
    password = "pg-pass-31337"
    monkeypatch.setenv("PORTAL_TOKEN", token)
    monkeypatch.setenv("PG_PASSWORD", password)
    checks.makefile(
        ".toml",
        synthetic="""
        [environments.sandbox]
        base_url = "http://127.0.0.1:9"
        headers = { Authorization = "Bearer ${PORTAL_TOKEN}" }
        postgres_dsn = "postgresql://monitor:${PG_PASSWORD}@127.0.0.1:5432/portal"
        """,
    )
    checks.makepyfile(
        check_leaky="""
        import pytest
        from synthetic import Measurement

        @pytest.mark.critical("!= 'x'")
        def check_leaks_in_value(synthetic_env):
            return synthetic_env.headers["Authorization"]

        @pytest.mark.critical("> 5")
        def check_leaks_in_error(synthetic_env):
            raise RuntimeError("cannot connect to " + synthetic_env.postgres_dsn)

        @pytest.mark.critical("> 5")
        def check_leaks_in_evidence(synthetic_env):
            return Measurement(1, evidence={"headers": dict(synthetic_env.headers),
                                            "note": synthetic_env.headers["Authorization"]})
        """
    )
    result = checks.runpytest("-v", "-rA")
    output = result.stdout.str() + result.stderr.str()
    written = (checks.path / "synthetic-results" / "results.json").read_text()
    for secret in (token, password):
        assert secret not in output
        assert secret not in written
    assert "***" in written


def test_state_carries_samples_between_runs(checks: pytest.Pytester) -> None:
    counter = checks.path / "counter.txt"
    counter.write_text("100")
    checks.makepyfile(
        check_rate=f"""
        import pathlib, pytest

        @pytest.mark.metric("failed", unit="requests")
        @pytest.mark.critical("> 20")
        def check_failed(samples):
            value = int(pathlib.Path({str(counter)!r}).read_text())
            increase = samples.increase("failedRequests", value)
            if increase is None:
                pytest.skip("first run")
            return increase
        """
    )
    checks.runpytest()
    assert results(checks)["checks"][0]["severity"] == "skipped"
    counter.write_text("130")
    checks.runpytest()
    assert results(checks)["checks"][0]["value"] == 30
    counter.write_text("5")  # the portal restarted: counter reset
    checks.runpytest()
    assert results(checks)["checks"][0]["value"] == 5
    state = json.loads((checks.path / "synthetic-results" / "state-sandbox.json").read_text())
    assert state["samples"]["failed"]["failedRequests"]["value"] == 5


def test_a_broken_state_file_does_not_stop_the_run(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_levels=LEVELS)
    state = checks.path / "synthetic-results" / "state-sandbox.json"
    state.parent.mkdir()
    state.write_text("{not json")
    result = checks.runpytest()
    assert result.parseoutcomes() == {"warned": 1}
    result.stdout.fnmatch_lines(
        ["state: *state-sandbox.json: state is not valid JSON*moved aside*"]
    )
    assert list(state.parent.glob("state-sandbox.json.corrupt-*"))


# -- hooks and xdist ---------------------------------------------------------------------------


HOOKS_CONFTEST = """
import json, os

def pytest_synthetic_result(result, config):
    with open(os.path.join(str(config.rootpath), "seen.jsonl"), "a") as handle:
        handle.write(json.dumps({"id": result.id, "severity": result.severity.value}) + "\\n")

def pytest_synthetic_run_finished(run, config):
    with open(os.path.join(str(config.rootpath), "runs.jsonl"), "a") as handle:
        handle.write(json.dumps({"worst": run.worst.value, "n": len(run.checks)}) + "\\n")
"""


def _severities(document: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["severity"] for c in document["checks"]}


def test_hooks_run_once_per_result_on_the_controller(checks: pytest.Pytester) -> None:
    checks.makeconftest(HOOKS_CONFTEST)
    checks.makepyfile(check_portal=CHECKS)
    checks.runpytest()
    seen = [json.loads(line) for line in (checks.path / "seen.jsonl").read_text().splitlines()]
    assert sorted(s["severity"] for s in seen) == ["critical", "ok", "unknown", "warning"]
    runs = [json.loads(line) for line in (checks.path / "runs.jsonl").read_text().splitlines()]
    assert runs == [{"worst": "critical", "n": 4}]


@pytest.mark.slow
def test_xdist_gathers_results_exactly_once(checks: pytest.Pytester) -> None:
    checks.makeconftest(HOOKS_CONFTEST)
    checks.makepyfile(check_portal=CHECKS)
    checks.makepyfile(
        check_more="""
        import pytest
        @pytest.mark.parametrize("n", range(8))
        @pytest.mark.metric("load", unit="jobs")
        @pytest.mark.warning("> 3")
        @pytest.mark.critical("> 6")
        def check_load(n):
            return n
        """
    )
    serial = checks.runpytest()
    serial_results = _severities(results(checks))
    (checks.path / "seen.jsonl").unlink()
    (checks.path / "runs.jsonl").unlink()

    parallel = checks.runpytest_subprocess("-n", "2")
    parallel_results = _severities(results(checks))
    assert parallel_results == serial_results
    assert len(parallel_results) == 12
    assert parallel.ret == serial.ret == pytest.ExitCode.TESTS_FAILED
    seen = (checks.path / "seen.jsonl").read_text().splitlines()
    assert len(seen) == 12
    assert len((checks.path / "runs.jsonl").read_text().splitlines()) == 1
    parallel.stdout.fnmatch_lines(["*synthetic summary*"])


def _run_ids(path: Path) -> set[str]:
    return {line.split("synthetic-", 1)[1].rsplit("-", 1)[0] for line in path.read_text().split()}


@pytest.mark.slow
def test_xdist_workers_share_the_run_id(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_ids="""
        import pytest
        from synthetic.run_state import run_state

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.critical("== 'never'")
        def check_run_id(request, n):
            with open("ids.txt", "a") as handle:
                handle.write("synthetic-" + run_state(request.config).run_id + "-x\\n")
            return "x"
        """
    )
    checks.runpytest_subprocess("-n", "2")
    ids = _run_ids(checks.path / "ids.txt")
    assert ids == {results(checks)["run_id"]}


def test_a_check_out_of_time_is_bounded(checks: pytest.Pytester) -> None:
    checks.makefile(".toml", synthetic="[environments.sandbox]\ncheck_timeout_s = 0.5\n")
    checks.makepyfile(
        check_hang="""
        import time, pytest

        @pytest.mark.critical("> 5")
        def check_hangs():
            time.sleep(30)
            return 1

        @pytest.mark.critical("< 0")
        def check_limit(request):
            marker = request.node.get_closest_marker("timeout")
            return marker.args[0] if marker else 0

        @pytest.mark.timeout(10)
        @pytest.mark.critical("< 0")
        def check_own_limit(request):
            return request.node.get_closest_marker("timeout").args[0]
        """
    )
    result = checks.runpytest()
    found = by_name(results(checks))
    # Not waiting on the target: its own overrun (tests/test_verdict.py has the blame).
    assert found["check_hangs"]["severity"] == "unknown"
    assert found["check_hangs"]["reason"] == (
        "hangs: the check ran past its deadline (0.5 s) while not waiting on the target; stopped"
    )
    assert (found["check_limit"]["value"], found["check_own_limit"]["value"]) == (0.5, 10)
    assert result.parseoutcomes() == {"unknown": 1, "passed": 2}
    # A --timeout on the command line wins over check_timeout_s (a marker still wins over both).
    checks.runpytest("--timeout", "7", "-k", "limit")
    found = by_name(results(checks))
    assert (found["check_limit"]["value"], found["check_own_limit"]["value"]) == (0, 10)


def test_a_check_cannot_be_xfail(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_xfail="""
        import pytest

        @pytest.mark.xfail(reason="known")
        @pytest.mark.critical("> 5")
        def check_hidden():
            return 99
        """
    )
    result = checks.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*check_xfail.py::check_hidden: a check cannot be xfail*"])


def test_unreachable_shows_the_reason_not_a_traceback(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_net="""
        import pytest

        @pytest.fixture
        def snapshot():
            raise ConnectionRefusedError(111, "Connection refused")

        @pytest.mark.critical("> 5")
        def check_down(snapshot):
            return 1

        @pytest.mark.critical("> 5")
        def check_bug():
            return {}["missing"]
        """
    )
    result = checks.runpytest()
    output = result.stdout.str()
    result.stdout.fnmatch_lines(["down: unreachable: ConnectionRefusedError: *Connection refused"])
    assert "raise ConnectionRefusedError" not in output
    # A check that could not measure keeps its traceback: it is a bug to fix.
    assert 'return {}["missing"]' in output


@pytest.mark.slow
def test_evidence_of_any_type_never_crashes_the_run(checks: pytest.Pytester) -> None:
    checks.makepyfile(
        check_evidence="""
        import datetime, decimal, pytest
        from synthetic import Measurement

        @pytest.mark.critical("> 5")
        def check_rows():
            rows = [(1, decimal.Decimal("2.5"), datetime.datetime(2026, 1, 2, 3, 4, 5))]
            return Measurement(1, evidence={"rows": rows, "body": b"<html>", "raw": b"\\xff"})

        @pytest.mark.critical("> 5")
        def check_huge():
            return Measurement(1, evidence="x" * 1_000_000)

        @pytest.mark.metric("pool", unit="%")
        @pytest.mark.critical("> 50%")
        def check_decimal():
            return decimal.Decimal("60.5")
        """
    )
    result = checks.runpytest("-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    found = by_name(results(checks))
    assert found["check_rows"]["evidence"] == {
        "rows": [[1, 2.5, "2026-01-02T03:04:05"]],
        "body": "<html>",
        "raw": "base64:/w==",
    }
    assert found["check_huge"]["evidence"]["truncated"] is True
    assert len(found["check_huge"]["evidence"]["head"]) == 65_536
    assert (found["check_decimal"]["value"], found["check_decimal"]["severity"]) == (
        60.5,
        "critical",
    )


def test_secrets_are_masked_on_every_path(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, tenant, password = "tok-1a2b3c4d5e", "tenant-77aa88bb", "pw-99zz88yy"
    monkeypatch.setenv("PORTAL_TOKEN", token)
    monkeypatch.setenv("TENANT_KEY", tenant)
    monkeypatch.setenv("BFF_PASSWORD", password)
    checks.makefile(
        ".toml",
        synthetic="""
        [environments.sandbox]
        base_url = "http://monitor:${BFF_PASSWORD}@127.0.0.1:9/api/${TENANT_KEY}/"
        headers = { Authorization = "Bearer ${PORTAL_TOKEN}" }
        """,
    )
    checks.makepyfile(
        check_paths="""
        import logging, pytest

        @pytest.fixture
        def leaky_teardown(synthetic_env):
            yield
            raise RuntimeError("teardown saw " + synthetic_env.headers["Authorization"])

        @pytest.mark.critical("> 5")
        def check_output(synthetic_env, leaky_teardown):
            print("stdout:", synthetic_env.headers["Authorization"], synthetic_env.base_url)
            logging.getLogger("x").warning("log: %s", synthetic_env.base_url)
            raise ValueError("failed at " + synthetic_env.base_url)

        def test_ordinary(synthetic_env):
            assert synthetic_env.base_url == "nope"
        """
    )
    result = checks.runpytest(
        "-rA", "--junitxml=junit.xml", "--alluredir=allure", "--log-level=INFO"
    )
    texts = [result.stdout.str(), result.stderr.str()]
    texts += [p.read_text(errors="replace") for p in checks.path.rglob("*") if p.is_file()
              and p.suffix in {".xml", ".json", ".txt"}]  # fmt: skip
    assert len(texts) > 4  # junit, results.json and allure files were written
    for text in texts:
        for secret in (token, tenant, password):
            assert secret not in text
    assert "127.0.0.1:9/api/***/" in results(checks)["target"]
