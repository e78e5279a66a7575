"""synthetic.config: discovery, environments, ``${VAR}``, validation, secrets."""

from __future__ import annotations

import textwrap
import tomllib
from pathlib import Path

import pytest

from synthetic.config import Config, Environment, Runbooks, ThresholdOverride, load_config
from synthetic.errors import ConfigError, NotConfigured, SyntheticError
from synthetic.redact import MASK
from tests.support.logs_helpers import PORTAL_DEPENDENCIES_TOML

TOKEN = "tok-5ecr3t-value"
REDIS_PW = "r3dis-pa55"
PG_PW = "pg-pa55word"


def write(directory: Path, text: str, name: str = "synthetic.toml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path, environment: str | None = None, **environ: str) -> Config:
    return load_config(path=path, environment=environment, environ=environ)


def config_error(path: Path, environment: str | None = None, **environ: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(path, environment, **environ)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- discovery -------------------------------------------------------------------


def test_synthetic_toml_wins_over_pyproject_in_the_same_directory(tmp_path: Path) -> None:
    write(tmp_path, '[tool.synthetic]\ndefault_environment = "pyproject"\n', "pyproject.toml")
    chosen = write(
        tmp_path,
        """
        default_environment = "from-synthetic-toml"
        [environments.from-synthetic-toml]
        base_url = "http://synthetic.toml"
        """,
    )

    config = load_config(search_from=tmp_path, environ={})

    assert config.path == chosen
    assert config.source == str(chosen)
    assert config.environment.name == "from-synthetic-toml"


def test_config_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    chosen = write(tmp_path, '[environments.sandbox]\nbase_url = "http://up.there"\n')
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)

    config = load_config(search_from=deep, environ={})

    assert config.path == chosen
    assert config.environment.base_url == "http://up.there"


def test_pyproject_with_tool_synthetic_is_used(tmp_path: Path) -> None:
    chosen = write(
        tmp_path,
        """
        [project]
        name = "portal"
        [tool.synthetic.environments.sandbox]
        base_url = "http://from.pyproject"
        """,
        "pyproject.toml",
    )

    config = load_config(search_from=tmp_path, environ={})

    assert config.path == chosen
    assert config.environment.base_url == "http://from.pyproject"


def test_pyproject_without_tool_synthetic_is_skipped(tmp_path: Path) -> None:
    chosen = write(tmp_path, '[environments.sandbox]\nbase_url = "http://parent"\n')
    child = tmp_path / "service"
    write(child, '[project]\nname = "service"\n[tool.ruff]\nline-length = 99\n', "pyproject.toml")

    config = load_config(search_from=child, environ={})

    assert config.path == chosen
    assert config.environment.base_url == "http://parent"


@pytest.mark.parametrize(
    ("environ", "base_url"),
    [
        ({}, "http://127.0.0.1:4000"),
        ({"SYNTHETIC_SANDBOX_URL": "http://127.0.0.1:4999"}, "http://127.0.0.1:4999"),
    ],
)
def test_without_a_config_file_the_builtin_sandbox_is_used(
    tmp_path: Path, environ: dict[str, str], base_url: str
) -> None:
    config = load_config(search_from=tmp_path, environ=environ)

    assert config.path is None
    assert config.source == "built-in defaults"
    assert config.environments == ("sandbox",)
    assert config.environment.name == "sandbox"
    assert config.environment.base_url == base_url
    assert config.checks == (tmp_path.resolve() / "checks",)
    assert config.state is None


def test_an_explicit_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "synthetic.toml"
    write(tmp_path, '[environments.sandbox]\nbase_url = "http://x"\n')

    with pytest.raises(ConfigError) as info:
        load_config(path=missing, search_from=tmp_path, environ={})

    assert str(missing) in str(info.value)
    assert "not found" in str(info.value)
    assert isinstance(info.value, SyntheticError)
    assert isinstance(info.value, ValueError)


def test_an_explicit_path_wins_over_discovery(tmp_path: Path) -> None:
    write(tmp_path, '[environments.sandbox]\nbase_url = "http://discovered"\n')
    explicit = write(
        tmp_path / "elsewhere", '[environments.sandbox]\nbase_url = "http://explicit"\n', "x.toml"
    )

    config = load_config(path=explicit, search_from=tmp_path, environ={})

    assert config.path == explicit
    assert config.environment.base_url == "http://explicit"


# --- environments ----------------------------------------------------------------

ENVIRONMENTS = """
    {default}
    [environments.staging]
    base_url = "http://staging"
    [environments.production]
    base_url = "http://production"
"""


@pytest.mark.parametrize(
    ("default", "argument", "selected", "base_url"),
    [
        ("", "production", "production", "http://production"),
        ('default_environment = "staging"', None, "staging", "http://staging"),
        ('default_environment = "staging"', "production", "production", "http://production"),
        ("", None, "sandbox", "http://127.0.0.1:4000"),
    ],
)
def test_environment_selection(
    tmp_path: Path, default: str, argument: str | None, selected: str, base_url: str
) -> None:
    path = write(tmp_path, ENVIRONMENTS.format(default=default))

    config = load(path, argument)

    assert config.environment.name == selected
    assert config.environment.base_url == base_url
    assert config.environments == ("production", "sandbox", "staging")


def test_an_unknown_environment_is_a_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path, ENVIRONMENTS.format(default=""))

    message = config_error(path, "prod")

    assert str(path) in message
    assert "'prod'" in message
    assert "production, sandbox, staging" in message


def test_an_unknown_default_environment_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, ENVIRONMENTS.format(default='default_environment = "qa"'))

    message = config_error(path)

    assert "'qa'" in message
    assert "production, sandbox, staging" in message


def test_a_config_that_defines_sandbox_keeps_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        base_url = "http://my-sandbox:8080"
        timeout_s = 1.5
        retries = 0
        """,
    )

    config = load(path, SYNTHETIC_SANDBOX_URL="http://ignored")

    assert config.environment.base_url == "http://my-sandbox:8080"
    assert config.environment.timeout_s == 1.5
    assert config.environment.retries == 0


def test_the_added_sandbox_uses_synthetic_sandbox_url(tmp_path: Path) -> None:
    path = write(tmp_path, ENVIRONMENTS.format(default=""))

    config = load(path, "sandbox", SYNTHETIC_SANDBOX_URL="http://127.0.0.1:4321")

    assert config.environment.base_url == "http://127.0.0.1:4321"


# --- ${VAR} ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${HOST}", {"HOST": "portal.example.com"}, "portal.example.com"),
        ("http://${HOST}:${PORT}/api", {"HOST": "h", "PORT": "81"}, "http://h:81/api"),
        ("${HOST:-localhost}", {}, "localhost"),
        ("${HOST:-localhost}", {"HOST": "remote"}, "remote"),
        ("${HOST:-}", {}, ""),
        ("${HOST:-http://a:1/b}", {}, "http://a:1/b"),
        ("a$$b", {}, "a$b"),
        ("$${HOST}", {"HOST": "never"}, "${HOST}"),
        ("$$$${HOST}", {}, "$${HOST}"),
        ("cost: 5$$", {}, "cost: 5$"),
    ],
)
def test_placeholders(tmp_path: Path, value: str, environ: dict[str, str], expected: str) -> None:
    path = write(tmp_path, f"[environments.sandbox.params]\nvalue = '{value}'\n")

    config = load(path, **environ)

    assert config.environment.params["value"] == expected


def test_the_default_is_used_when_the_variable_is_empty(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[environments.sandbox]\nbase_url = "${SYNTHETIC_SANDBOX_URL:-http://127.0.0.1:4000}"\n',
    )

    config = load(path, SYNTHETIC_SANDBOX_URL="")

    assert config.environment.base_url == "http://127.0.0.1:4000"


def test_placeholders_resolve_in_lists_and_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        log_files = ["/var/log/${APP}/a.log"]
        [environments.sandbox.params]
        queues = ["${APP}-in", "${APP}-out"]
        nested = { name = "${APP}" }
        """,
    )

    environment = load(path, APP="portal").environment

    assert environment.log_files == ("/var/log/portal/a.log",)
    assert environment.params["queues"] == ["portal-in", "portal-out"]
    assert environment.params["nested"] == {"name": "portal"}


def test_a_missing_variable_in_the_selected_environment_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.staging]
        base_url = "${STAGING_URL}"
        headers = { Authorization = "Bearer ${STAGING_TOKEN}" }
        """,
    )

    message = config_error(path, "staging", STAGING_URL="https://u:" + TOKEN + "@staging")

    assert str(path) in message
    assert "environments.staging.headers.Authorization" in message
    assert "STAGING_TOKEN" in message
    assert TOKEN not in message


def test_a_missing_variable_in_another_environment_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        base_url = "http://sandbox"
        [environments.production]
        base_url = "${PRODUCTION_URL}"
        headers = { Authorization = "Bearer ${PRODUCTION_TOKEN}" }
        """,
    )

    config = load(path, "sandbox")

    assert config.environment.base_url == "http://sandbox"
    assert config.environments == ("production", "sandbox")


def test_values_of_other_environments_are_not_secrets_here(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        base_url = "http://sandbox"
        [environments.production]
        headers = { Authorization = "Bearer ${PRODUCTION_TOKEN}" }
        """,
    )

    config = load(path, "sandbox", PRODUCTION_TOKEN=TOKEN)

    assert config.masker.secrets == frozenset()


def test_a_missing_variable_in_a_number_of_another_environment_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        base_url = "http://sandbox"
        [environments.production]
        timeout_s = "${PRODUCTION_TIMEOUT}"
        """,
    )

    config = load(path, "sandbox")

    assert config.environment.name == "sandbox"


def test_a_missing_variable_at_the_top_level_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[runbooks]\nbase_url = "${RUNBOOK_URL}"\n')

    message = config_error(path, "sandbox")

    assert "runbooks.base_url" in message
    assert "RUNBOOK_URL" in message


def test_interpolated_values_become_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.staging]
        headers = { "X-Tenant" = "${TENANT}" }
        params = { api = "${API_SECRET}" }
        """,
    )

    config = load(path, "staging", TENANT="tenant-0042", API_SECRET=TOKEN)

    assert {"tenant-0042", TOKEN} <= config.masker.secrets
    assert config.masker.text(f"tenant-0042 used {TOKEN}") == f"{MASK} used {MASK}"
    # The values themselves stay usable inside the process.
    assert config.environment.params["api"] == TOKEN


def test_sensitive_headers_are_secrets_even_when_literal(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox.headers]
        Authorization = "Bearer literal-token-123"
        "X-Api-Key" = "key-456789"
        Accept = "application/json"
        """,
    )

    config = load(path)

    assert {"Bearer literal-token-123", "key-456789"} <= config.masker.secrets
    assert "application/json" not in config.masker.secrets
    assert config.masker.text("Accept: application/json") == "Accept: application/json"


def test_url_passwords_are_secrets_but_urls_are_not(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.staging]
        base_url = "${BFF_URL}"
        redis_url = "${REDIS_URL}"
        postgres_dsn = "${PG_DSN}"
        metrics_url = "https://metrics.example.com/api"
        """,
    )
    environ = {
        "BFF_URL": "https://monitor:bff-pa55@bff.example.com",
        "REDIS_URL": f"redis://:{REDIS_PW}@cache.example.com:6379/0",
        "PG_DSN": f"postgresql://monitor:{PG_PW}@db.example.com/portal",
    }

    config = load(path, "staging", **environ)

    assert config.masker.secrets == {"bff-pa55", REDIS_PW, PG_PW}
    assert config.environment.redis_url == environ["REDIS_URL"]
    assert config.masker.text(f"GET {config.environment.base_url}/health") == (
        f"GET https://monitor:{MASK}@bff.example.com/health"
    )


def test_a_base_url_from_a_variable_is_not_masked_whole(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.staging]\nbase_url = "${BFF_URL}"\n')

    config = load(path, "staging", BFF_URL="https://bff.example.com")

    assert config.masker.secrets == frozenset()
    assert config.masker.text("https://bff.example.com/x") == "https://bff.example.com/x"


def test_literal_url_and_dsn_passwords_are_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        state = "redis://:{REDIS_PW}@state-cache:6379/1"
        [environments.sandbox]
        postgres_dsn = "host=db dbname=portal password='{PG_PW}'"
        """,
    )

    config = load(path)

    assert {REDIS_PW, PG_PW} <= config.masker.secrets
    assert config.state == f"redis://:{REDIS_PW}@state-cache:6379/1"


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 1\n", "colour"),
        ("[environments.sandbox]\nbase_ulr = 'x'\n", "environments.sandbox.base_ulr"),
        ("[runbooks]\nlink = {}\n", "runbooks.link"),
        (
            "[environments.s.thresholds.m]\nwarn = '> 1'\n",
            "environments.s.thresholds.m.warn",
        ),
    ],
)
def test_an_unknown_key_is_named_with_its_dotted_path(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)

    message = config_error(path)

    assert message == f"{path}: {key}: unknown key"


def test_an_unknown_key_in_pyproject_is_named_under_tool_synthetic(tmp_path: Path) -> None:
    path = write(tmp_path, "[tool.synthetic.environments.sandbox]\ntimeout = 5\n", "pyproject.toml")

    message = config_error(path)

    assert message == f"{path}: tool.synthetic.environments.sandbox.timeout: unknown key"


def test_a_wrong_type_names_the_key_and_the_type_but_not_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.sandbox]\ntimeout_s = "fast"\n')

    message = config_error(path)

    assert message.startswith(f"{path}: environments.sandbox.timeout_s: ")
    assert "number" in message
    assert "a string of 4 characters" in message
    assert "fast" not in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[environments.sandbox]\ntimeout_s = 0\n", "environments.sandbox.timeout_s"),
        ("[environments.sandbox]\nretries = 11\n", "environments.sandbox.retries"),
        ("[environments.sandbox]\nretries = 1.5\n", "environments.sandbox.retries"),
        ("[environments.sandbox]\nheaders = 'x'\n", "environments.sandbox.headers"),
        ("checks = 'checks'\n", "checks"),
        ("environments = []\n", "environments"),
    ],
)
def test_invalid_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)

    message = config_error(path)

    assert message.startswith(f"{path}: {key}: ")


def test_invalid_toml_is_a_one_line_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.sandbox\nbase_url = "x"\n')

    message = config_error(path)

    assert message.startswith(f"{path}: invalid TOML")


def test_an_explicit_pyproject_without_tool_synthetic_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "x"\n', "pyproject.toml")

    message = config_error(path)

    assert str(path) in message
    assert "[tool.synthetic]" in message


def test_an_explicit_pyproject_whose_tool_is_not_a_table_is_a_config_error(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, 'tool = "x"\n', "pyproject.toml")

    config_error(path)


SECRET_ENVIRON = {
    "TOKEN": TOKEN,
    "REDIS_URL": f"redis://:{REDIS_PW}@cache:6379/0",
    "PG_DSN": f"postgresql://m:{PG_PW}@db/portal",
    "FAST": "fast-and-secret",
}


@pytest.mark.parametrize(
    "text",
    [
        '[environments.sandbox]\ntimeout_s = "${TOKEN}"\n',
        '[environments.sandbox]\nretries = "${FAST}"\n',
        '[environments.sandbox]\nheaders = "${TOKEN}"\n',
        '[environments.sandbox]\nredis_url = ["${REDIS_URL}"]\n',
        '[environments.sandbox]\nlog_files = "${PG_DSN}"\n',
        "[environments.sandbox]\nthresholds = { m = { warning = 5 } }\n",
        '[environments.sandbox]\nbase_url = "${TOKEN}"\nbogus = "${PG_DSN}"\n',
        '[environments.sandbox]\nheaders = { A = "${TOKEN}", B = "${UNSET}" }\n',
        'state = "${REDIS_URL}"\n[environments.sandbox]\ntimeout_s = "${MISSING}"\n',
        f'[environments.sandbox]\nbase_url = "{TOKEN}\n',
        'default_environment = "${TOKEN}"\n',
    ],
)
def test_errors_are_one_line_without_secret_values(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)

    message = config_error(path, None, **SECRET_ENVIRON)

    for secret in (TOKEN, REDIS_PW, PG_PW, "fast-and-secret"):
        assert secret not in message


def test_an_error_about_a_key_with_a_newline_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[environments.sandbox]\n"bad\\nkey" = 1\n')

    config_error(path)


# --- paths, runbooks, thresholds -------------------------------------------------


def test_relative_paths_resolve_from_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    path = write(
        project,
        """
        checks = ["checks", "more/checks", "/abs/checks"]
        state = "var/state.json"
        [environments.sandbox]
        log_files = ["logs/app.log", "/var/log/syslog"]
        """,
    )
    monkeypatch.chdir(tmp_path)

    config = load(path)

    base = path.parent
    assert config.checks == (base / "checks", base / "more/checks", Path("/abs/checks"))
    assert config.environment.log_files == (str(base / "logs/app.log"), "/var/log/syslog")
    assert config.state == str(base / "var/state.json")
    assert config.environment.state == config.state


def test_the_environment_state_overrides_the_top_level_state(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        state = "top.json"
        [environments.production]
        state = "redis://cache:6379/2"
        [environments.staging]
        state = "${STATE_URL:-}"
        """,
    )

    assert load(path, "production").state == "redis://cache:6379/2"
    assert load(path, "staging").state == str(path.parent / "top.json")
    assert load(path, "sandbox").state == str(path.parent / "top.json")


@pytest.mark.parametrize(
    ("runbooks", "name", "expected"),
    [
        (Runbooks(base_url="https://docs/rb"), "https://wiki/x", "https://wiki/x"),
        (Runbooks(base_url="https://docs/rb"), "HTTP://wiki/x", "HTTP://wiki/x"),
        (Runbooks(links={"queues": "https://wiki/queues"}), "queues", "https://wiki/queues"),
        (
            Runbooks(base_url="https://docs/rb", links={"queues": "https://wiki/q"}),
            "queues",
            "https://wiki/q",
        ),
        (
            Runbooks(base_url="https://docs/rb/"),
            "queue-management",
            "https://docs/rb/queue-management",
        ),
        (
            Runbooks(base_url="https://docs/rb"),
            "queue management",
            "https://docs/rb/queue%20management",
        ),
        (Runbooks(base_url="https://docs/rb"), "a?b#c", "https://docs/rb/a%3Fb%23c"),
        (Runbooks(), "queue-management", "queue-management"),
        (Runbooks(base_url="https://docs/rb"), None, None),
        (Runbooks(base_url="https://docs/rb"), "", None),
    ],
)
def test_runbooks_resolve(runbooks: Runbooks, name: str | None, expected: str | None) -> None:
    assert runbooks.resolve(name) == expected


def test_runbooks_are_loaded_from_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [runbooks]
        base_url = "${RUNBOOK_BASE_URL:-https://portal.example.com/docs/runbooks}"
        links = { redis = "https://wiki.example.com/redis" }
        """,
    )

    runbooks = load(path).runbooks

    assert runbooks.resolve("redis") == "https://wiki.example.com/redis"
    assert runbooks.resolve("queues") == "https://portal.example.com/docs/runbooks/queues"


def test_threshold_overrides_parse_into_the_model(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        thresholds."whmcs.queue_size" = { warning = "> 20", critical = false }
        thresholds."redis.memory" = { critical = ">= 90%" }
        """,
    )

    thresholds = load(path).environment.thresholds

    assert thresholds == {
        "whmcs.queue_size": ThresholdOverride(warning="> 20", critical=False),
        "redis.memory": ThresholdOverride(warning=None, critical=">= 90%"),
    }


def test_the_project_pyproject_loads_for_the_sandbox() -> None:
    root = Path(__file__).resolve().parent.parent
    config = load_config(path=root / "pyproject.toml", environ={})

    assert config.environment.name == "sandbox"
    assert config.environment.base_url == "http://127.0.0.1:4000"
    assert {"sandbox", "staging", "production"} <= set(config.environments)


# --- Environment -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["redis_url", "postgres_dsn", "log_files", "base_url", "queue"])
def test_require_raises_not_configured_for_unset_values(key: str) -> None:
    environment = Environment(name="staging", params={"queue": ""})

    with pytest.raises(NotConfigured) as info:
        environment.require(key)

    assert str(info.value) == f"{key} is not configured for environment 'staging'"
    assert info.value.key == key
    assert info.value.environment == "staging"
    assert isinstance(info.value, ConfigError)


def test_require_returns_set_values_including_params() -> None:
    environment = Environment(
        name="staging",
        redis_url="redis://cache",
        retries=0,
        params={"queue": "whmcs", "limit": 0},
    )

    assert environment.require("redis_url") == "redis://cache"
    assert environment.require("retries") == 0
    assert environment.require("queue") == "whmcs"
    assert environment.require("limit") == 0


def test_require_from_a_loaded_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[environments.staging]\nparams = { queue = 'whmcs' }\n")
    environment = load(path, "staging").environment

    assert environment.require("queue") == "whmcs"
    with pytest.raises(NotConfigured, match="redis_url is not configured for environment"):
        environment.require("redis_url")


def test_environment_repr_shows_no_header_value_and_no_url_password() -> None:
    environment = Environment(
        name="production",
        base_url=f"https://monitor:{PG_PW}@bff.example.com",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Tenant": "tenant-0042"},
        redis_url=f"redis://:{REDIS_PW}@cache:6379/0",
    )

    shown = repr(environment)

    assert "production" in shown
    assert "bff.example.com" in shown
    assert "Authorization" in shown
    for secret in (TOKEN, "tenant-0042", PG_PW, REDIS_PW):
        assert secret not in shown


def test_environment_is_frozen() -> None:
    environment = Environment(name="x")

    with pytest.raises(AttributeError):
        environment.name = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[environments.x]\nbase_url = "not a url"',
         "environments.x.base_url: expected an http:// or https:// URL (got no scheme)"),
        ('[environments.x]\nredis_url = "http://h"',
         "environments.x.redis_url: expected a redis://, rediss:// or unix:// URL (got http://)"),
        ('[environments.x]\npostgres_dsn = "mysql://u:pw@h/db"',
         "environments.x.postgres_dsn: expected a postgresql:// URL or a key=value DSN"),
        ('state = "http://x"', "state: expected a file path or a redis:// URL (got http://)"),
        ('[environments.x]\nbase_url = "http://h/${A"',
         "environments.x.base_url: a '$' that is not ${NAME}"),
        ("[environments.x.thresholds.m]\ncritical = 5",
         'environments.x.thresholds.m.critical: expected a threshold expression in quotes'),
    ],
)  # fmt: skip
def test_values_of_the_wrong_form_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text(body + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path=path, environment="x", environ={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert "pw@" not in str(info.value)


def test_a_libpq_dsn_and_an_empty_url_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text(
        '[environments.x]\npostgres_dsn = "host=db password=s3cretpw"\nredis_url = ""\n',
        encoding="utf-8",
    )
    config = load_config(path=path, environment="x", environ={})
    assert config.environment.postgres_dsn == "host=db password=s3cretpw"
    assert "s3cretpw" in config.masker.secrets
    with pytest.raises(ConfigError, match="redis_url is not configured"):
        config.environment.require("redis_url")


@pytest.mark.parametrize("text", ["cost: 5$", "$HOST", "${HOST", "http://h/$1"])
def test_a_dollar_that_is_not_a_placeholder_is_an_error(tmp_path: Path, text: str) -> None:
    # "$HOST" almost always meant "${HOST}": keeping it literally would send
    # requests to "$HOST". A literal dollar is written "$$".
    path = tmp_path / "synthetic.toml"
    path.write_text(f'[environments.x]\nheaders = {{ X = "{text}" }}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"environments\.x\.headers\.X: a '\$' that is not"):
        load_config(path=path, environment="x", environ={"HOST": "h"})


def test_an_empty_log_file_entry_means_not_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APP_LOG", raising=False)
    path = write(
        tmp_path,
        """
        [environments.sandbox]
        log_files = ["${APP_LOG:-}", "error.log"]
        """,
    )
    assert load(path).environment.log_files == (str(path.parent / "error.log"),)


# --- top-level tables for every environment --------------------------------------


def test_top_level_exporters_and_logs_apply_to_every_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [exporters]
        dogstatsd_prefix = "shop."
        cloudwatch_names = { "orders.backlog" = "OrderBacklog" }

        [logs]
        slow_ms = 1500
        dependencies = { stripe = {}, ledger = {} }

        [environments.staging]
        base_url = "http://127.0.0.1:1"

        [environments.production]
        base_url = "http://127.0.0.1:2"
        exporters = { dogstatsd = "127.0.0.1:8125", dogstatsd_prefix = "orders." }
        logs = { dependencies = { stripe = {} } }
        """,
    )
    staging = load(path, "staging").environment
    assert staging.exporters.dogstatsd_prefix == "shop."
    assert staging.exporters.cloudwatch_names == {"orders.backlog": "OrderBacklog"}
    assert staging.exporters.dogstatsd is None  # an environment turns an exporter on
    assert sorted(staging.logs.dependencies) == ["ledger", "stripe"]
    assert staging.logs.slow_ms == 1500
    production = load(path, "production").environment
    # Key by key: its own keys win whole, the others come from the top.
    assert production.exporters.dogstatsd == "127.0.0.1:8125"
    assert production.exporters.dogstatsd_prefix == "orders."
    assert production.exporters.cloudwatch_names == {"orders.backlog": "OrderBacklog"}
    assert sorted(production.logs.dependencies) == ["stripe"]
    assert production.logs.slow_ms == 1500
    # The sandbox that exists without being defined gets them too.
    assert sorted(load(path, "sandbox").environment.logs.dependencies) == ["ledger", "stripe"]


def test_a_bad_top_level_key_is_named_where_it_is_written(tmp_path: Path) -> None:
    path = write(tmp_path, "[logs]\nslow_ms = -1\n[environments.staging]\n")
    message = config_error(path, "staging")
    assert "logs.slow_ms" in message
    assert "environments.staging" not in message


def test_the_framework_names_no_dependency_and_no_metric() -> None:
    environment = load_config(
        path=None, environment=None, environ={}, search_from=Path("/")
    ).environment
    assert environment.logs.dependencies == {}
    assert environment.exporters.cloudwatch_names == {}
    assert environment.exporters.dogstatsd_names == {}
    assert environment.exporters.dogstatsd_prefix == ""


def test_the_portal_config_has_the_guides_dependencies_and_names() -> None:
    # The monitoring guide (../shared/seed): WHMCS, Salesforce and Freebit, Freebit
    # slower by nature (3 s / 10 s); CloudWatch namespace CustomerPortal's
    # WhmcsQueueDepth; DataDog's portal.whmcs.queue_depth and .failed_requests.
    repo = Path(__file__).resolve().parents[1]
    needed = {
        f"{env}_{key}": value
        for env in ("STAGING", "PRODUCTION")
        for key, value in (("BFF_URL", "http://127.0.0.1:1"), ("MONITOR_TOKEN", "t"))
    }
    for name in ("sandbox", "staging", "production"):
        environment = load_config(path=repo / "pyproject.toml", environment=name, environ=needed)
        logs = environment.environment.logs
        assert sorted(logs.dependencies) == ["freebit", "salesforce", "whmcs"]
        freebit = logs.dependencies["freebit"].response_time_p95
        assert (freebit.warning, freebit.critical) == ("> 3s", "> 10s")
        exporters = environment.environment.exporters
        assert exporters.cloudwatch_names["whmcs.queue_size"] == "WhmcsQueueDepth"
        assert exporters.dogstatsd_names["whmcs.queue_size"] == "portal.whmcs.queue_depth"
        assert exporters.dogstatsd_names["whmcs.failed_requests"] == "portal.whmcs.failed_requests"
        assert exporters.dogstatsd_prefix == "portal."


@pytest.mark.parametrize(
    ("table", "wanted"),
    [
        ('dogstatsd_prefix = "portal-"', "exporters.dogstatsd_prefix: expected letters"),
        ('dogstatsd_names = { "x" = "9lives" }', "x: a DataDog metric name starts with a letter"),
        ('cloudwatch_names = { "x" = "" }', "x: a CloudWatch metric name is 1-255 ASCII"),
    ],
)
def test_a_bad_exported_name_is_named(tmp_path: Path, table: str, wanted: str) -> None:
    assert wanted in config_error(write(tmp_path, f"[exporters]\n{table}\n"))


def test_the_tests_portal_dependencies_are_the_portals() -> None:
    repo = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    assert (
        tomllib.loads(PORTAL_DEPENDENCIES_TOML)["logs"]["dependencies"]
        == pyproject["tool"]["synthetic"]["logs"]["dependencies"]
    )
