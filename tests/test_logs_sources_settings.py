"""The ``logs`` table's source and backend sub-tables: validation and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic.config import Config, load_config
from synthetic.errors import ConfigError
from synthetic.redact import MASK


def load(tmp_path: Path, text: str, **environ: str) -> Config:
    path = tmp_path / "synthetic.toml"
    path.write_text("[environments.p]\n" + text, encoding="utf-8")
    return load_config(path=path, environment="p", environ=environ)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_files_stay_the_default(tmp_path: Path) -> None:
    assert load(tmp_path, "").environment.logs.source == "file"


LOKI = '[environments.p.logs.loki]\nurl = "http://l"\n'
SELECTOR = "selector = '{service=\"orders-api\"}'\n"  # the framework has no default stream
PROM = '[environments.p.logs.prometheus]\nurl = "http://p"\n'


@pytest.mark.parametrize(
    ("table", "wanted"),
    [
        ('[environments.p.logs]\nsource = "loki"\n', 'source = "loki" needs a [logs.loki] table'),
        ('[environments.p.logs]\nsource = "cloudwatch"\n', "(at least its log_group)"),
        ('[environments.p.logs]\nsource = "loki"\n[environments.p.logs.loki]\nurl = "${U:-}"\n'
         + SELECTOR, "needs a [logs.loki] table (its url is empty)"),
        ('[environments.p.logs]\nsource = "elastic"\n', "p.logs.source: input should be"),
        ('[environments.p.logs.loki]\nurl = "loki:3100"\n', "expected an http:// or https:// URL"),
        (LOKI + 'selector = "service=bff"\n',
         "expected a stream selector"),
        (LOKI + 'selector = \'{service!="bff"}\'\n',
         "at least one matcher that selects"),
        (LOKI, "environments.p.logs.loki.selector"),
        (LOKI + SELECTOR + 'bearer = "t0ken"\nusername = "u"\npassword = "p"\n',
         "username and password, or bearer, not both"),
        (LOKI + SELECTOR + 'username = "u"\n', "username and password go together"),
        (LOKI + SELECTOR + 'labels = { level = "lev-el" }\n', "expected a label name"),
        (PROM + 'requests_metric = "sum(x)"\n',
         "without sum(...)"),
        (PROM + 'dependency_failed = "outcome"\n',
         "environments.p.logs.prometheus.dependency_failed"),
        ('[environments.p.logs.cloudwatch]\nlog_group = "/ecs/bff"\nregion = "Europe"\n',
         "expected an AWS region"),
    ],
)  # fmt: skip
def test_a_bad_backend_table_is_one_line_naming_the_key(
    tmp_path: Path, table: str, wanted: str
) -> None:
    message = error(tmp_path, table)
    assert "environments.p.logs" in message
    assert wanted in message


def test_backend_credentials_are_secrets_from_variables_and_literal(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[environments.p.logs]\nsource = "loki"\n'
        '[environments.p.logs.loki]\nurl = "${LOKI_URL}"\nusername = "${LOKI_USER}"\n'
        'password = "${LOKI_PASSWORD}"\ntenant = "portal"\n'
        + SELECTOR
        + '[environments.p.logs.prometheus]\nurl = "https://reader:prom-pa55@prom.example.com"\n'
        'bearer = "literal-prom-token"\n',
        LOKI_URL="https://logs.example.com",
        LOKI_USER="monitor-user",
        LOKI_PASSWORD="l0ki-pa55word",
    )
    masker = config.masker
    assert {"monitor-user", "l0ki-pa55word", "prom-pa55", "literal-prom-token"} <= masker.secrets
    shown = masker.text(
        "Loki https://logs.example.com as monitor-user:l0ki-pa55word; "
        "Prometheus https://reader:prom-pa55@prom.example.com with literal-prom-token"
    )
    assert shown == (
        f"Loki https://logs.example.com as {MASK}:{MASK}; "
        f"Prometheus https://reader:{MASK}@prom.example.com with {MASK}"
    )
    loki = config.environment.logs.loki
    assert loki is not None
    assert loki.basic() == ("monitor-user", "l0ki-pa55word")  # usable inside the process
    assert loki.headers() == {"X-Scope-OrgID": "portal"}
