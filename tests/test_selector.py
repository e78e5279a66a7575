"""synthetic.measure.selector: PromQL-style series selectors (parsing, matching, aggregating),
and reading them from exposition text with synthetic.measure.prometheus; and the config key
``connections_metric`` that holds one."""

from __future__ import annotations

import re
import statistics
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from checks.settings import portal_settings
from synthetic.config import load_config
from synthetic.errors import ConfigError, MeasurementError
from synthetic.measure.prometheus import select_series, series_value
from synthetic.measure.selector import Matcher, SeriesSelector, format_series, parse_selector

# -- parsing ------------------------------------------------------------------------------------


def test_a_bare_name() -> None:
    assert parse_selector("bff_http_active_connections") == SeriesSelector(
        "bff_http_active_connections"
    )
    assert parse_selector("  up  ") == SeriesSelector("up")
    assert parse_selector("a:b_c") == SeriesSelector("a:b_c")  # recording-rule names


def test_matchers_of_every_operator_and_an_aggregation() -> None:
    selector = parse_selector(
        ' sum ( conns { server = "public" , pod != "", zone =~ "eu-.*", tier !~ "x|y", } ) '
    )
    assert selector == SeriesSelector(
        "conns",
        (
            Matcher("server", "=", "public"),
            Matcher("pod", "!=", ""),
            Matcher("zone", "=~", "eu-.*"),
            Matcher("tier", "!~", "x|y"),
        ),
        "sum",
    )
    assert str(selector) == 'sum(conns{server="public",pod!="",zone=~"eu-.*",tier!~"x|y"})'
    for aggregation in ("max", "min", "avg"):
        assert parse_selector(f"{aggregation}(conns)").aggregation == aggregation


def test_label_values_use_the_exposition_escapes() -> None:
    selector = parse_selector(r'm{path="C:\\logs\\", quote="say \"hi\"", lines="a\nb"}')
    assert [m.value for m in selector.matchers] == ["C:\\logs\\", 'say "hi"', "a\nb"]
    assert str(selector) == r'm{path="C:\\logs\\",quote="say \"hi\"",lines="a\nb"}'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty selector"),
        ("   ", "empty selector"),
        ('{server="public"}', "expected a metric name at character 1"),
        ("9lives", "expected a metric name at character 1"),
        ("m{", "expected a label name or '}' at character 3"),
        ("m{server}", "expected =, !=, =~ or !~ after label server at character 9"),
        ("m{server==x}", "expected a value in double quotes for label server at character 10"),
        ("m{server='x'}", "expected a value in double quotes for label server"),
        ('m{server="x}', "label server: the value's quote is not closed at character 10"),
        ('m{server="x"', "expected ',' or '}' after a label matcher at character 13"),
        ('m{a="x" b="y"}', "expected ',' or '}' after a label matcher at character 9"),
        ('m{a="\\d"}', "label a: unknown escape"),
        ('m{a="x\\', "label a: unknown escape"),
        ('m{a=~"("}', "label a: invalid regex '(': missing ), unterminated subpattern"),
        ("count(m)", "'count(' is not an aggregation this reads (sum, max, min, avg)"),
        ("sum(m", "expected ')' closing sum( at character 6"),
        ("sum()", "expected a metric name inside sum(...) at character 5"),
        ("sum(m))", "unexpected text after the selector at character 7"),
        ("m n", "unexpected text after the selector at character 3"),
        ("m[5m]", "unexpected text after the selector at character 2"),
        ("rate(m[5m])", "'rate(' is not an aggregation this reads"),
    ],
)
def test_malformed_selectors_say_what_and_where(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        parse_selector(text)
    assert len(str(caught.value).splitlines()) == 1


def test_a_long_malformed_selector_is_shown_cut() -> None:
    with pytest.raises(ValueError, match=r"…'$") as caught:
        parse_selector("m{" + "a" * 500)
    assert len(str(caught.value)) < 250


# Label values: any text, including quotes, backslashes and newlines.
values = st.text(st.characters(codec="utf-8"), max_size=20)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)
metric_names = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,15}", fullmatch=True)
literal_matchers = st.builds(Matcher, label_names, st.sampled_from(["=", "!="]), values)


@given(
    name=metric_names,
    matchers=st.lists(literal_matchers, max_size=4),
    aggregation=st.sampled_from([None, "sum", "max", "min", "avg"]),
)
def test_the_canonical_text_parses_back_to_the_same_selector(
    name: str, matchers: list[Matcher], aggregation: str | None
) -> None:
    selector = SeriesSelector(name, tuple(matchers), aggregation)  # type: ignore[arg-type]
    assert parse_selector(str(selector)) == selector


@given(value=values)
def test_a_value_escaped_as_the_exposition_format_does_reads_back(value: str) -> None:
    # prometheus_client (the reference client) writes the exposition; its escaping of
    # the label value is what a selector must accept.
    registry = CollectorRegistry()
    Gauge("conns", "c", ["server"], registry=registry).labels(server=value).set(1)
    line = next(
        line for line in generate_latest(registry).decode().split("\n") if line.startswith("conns{")
    )
    selector_text = line.rsplit(" ", 1)[0]  # conns{server="..."}
    selector = parse_selector(selector_text)
    assert selector.matchers == (Matcher("server", "=", value),)
    assert selector.matches("conns", {"server": value})
    assert format_series("conns", {"server": value}) == selector_text


# -- matching: PromQL's semantics ---------------------------------------------------------------


def test_a_missing_label_has_the_empty_value() -> None:
    assert parse_selector('m{pod=""}').matches("m", {})
    assert not parse_selector('m{pod!=""}').matches("m", {})
    assert parse_selector('m{pod!="a"}').matches("m", {})
    assert parse_selector('m{pod=~"a|"}').matches("m", {})
    assert parse_selector('m{pod!~"a.*"}').matches("m", {"server": "x"})


def test_regex_matchers_are_anchored_at_both_ends() -> None:
    assert parse_selector('m{s=~"pub"}').matches("m", {"s": "pub"})
    assert not parse_selector('m{s=~"pub"}').matches("m", {"s": "public"})
    assert not parse_selector('m{s=~"lic"}').matches("m", {"s": "public"})
    assert parse_selector('m{s!~"pub"}').matches("m", {"s": "public"})
    assert parse_selector('m{s=~"a|b"}').matches("m", {"s": "b"})
    assert not parse_selector('m{s=~"a|b"}').matches("m", {"s": "ab"})


@given(pattern=st.sampled_from(["a+", "[ab]*", "x|yz", "(ab)?c", ".*"]), value=st.text("abcxyz"))
def test_regex_matching_is_a_full_match(pattern: str, value: str) -> None:
    expected = re.fullmatch(pattern, value) is not None
    assert parse_selector(f'm{{l=~"{pattern}"}}').matches("m", {"l": value}) is expected
    assert parse_selector(f'm{{l!~"{pattern}"}}').matches("m", {"l": value}) is not expected


def test_the_name_must_be_equal() -> None:
    selector = parse_selector("conns")
    assert selector.matches("conns", {"server": "a"})
    assert not selector.matches("conns_total", {})
    assert not selector.matches("con", {})


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=10))
def test_aggregations(numbers: list[float]) -> None:
    assert parse_selector("sum(m)").aggregate(numbers) == pytest.approx(sum(numbers), abs=1e-6)
    assert parse_selector("max(m)").aggregate(numbers) == max(numbers)
    assert parse_selector("min(m)").aggregate(numbers) == min(numbers)
    assert parse_selector("avg(m)").aggregate(numbers) == pytest.approx(
        statistics.fmean(numbers), abs=1e-6
    )


# -- reading an exposition ----------------------------------------------------------------------

TEXT = """\
# TYPE bff_http_active_connections gauge
bff_http_active_connections{server="public"} 7
bff_http_active_connections{server="admin"} 3
bff_http_active_connections{server="internal"} 1
# TYPE bff_http_max_connections gauge
bff_http_max_connections 200
# TYPE pool_ratio gauge
pool_ratio{pool="main"} 0.5
pool_ratio{pool="replica"} NaN
"""


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ('bff_http_active_connections{server="public"}', 7),
        ('bff_http_active_connections{server=~"pub.*"}', 7),
        ('sum(bff_http_active_connections{server!="internal"})', 10),
        ('sum(bff_http_active_connections{server!~"pub.*|int.*"})', 3),
        ("sum(bff_http_active_connections)", 11),
        ("max(bff_http_active_connections)", 7),
        ("min(bff_http_active_connections)", 1),
        ("avg(bff_http_active_connections)", 11 / 3),
        ("bff_http_max_connections", 200),
        ('sum(bff_http_max_connections{server=""})', 200),  # no label: the empty value
    ],
)
def test_series_value(selector: str, expected: float) -> None:
    assert series_value(TEXT, parse_selector(selector)) == pytest.approx(expected)


def test_several_series_without_aggregation_are_listed_on_one_line() -> None:
    selector = parse_selector('bff_http_active_connections{server!="x"}')
    with pytest.raises(MeasurementError) as caught:
        series_value(TEXT, selector, source="GET /metrics")
    assert str(caught.value) == (
        'GET /metrics has 3 series matching bff_http_active_connections{server!="x"} '
        '(bff_http_active_connections{server="public"}, '
        'bff_http_active_connections{server="admin"}, '
        'bff_http_active_connections{server="internal"}); labels are needed to choose one, '
        'or an aggregation such as sum(bff_http_active_connections{server!="x"})'
    )


def test_many_series_are_cut_to_three() -> None:
    text = "".join(f'm{{n="{n}"}} {n}\n' for n in range(50))
    with pytest.raises(MeasurementError, match=r'm\{n="2"\} and 47 more\); labels are needed'):
        series_value(text, parse_selector("m"))


def test_nothing_matching_lists_the_series_of_that_name() -> None:
    with pytest.raises(MeasurementError) as caught:
        series_value(TEXT, parse_selector('bff_http_active_connections{server="pub"}'))
    assert str(caught.value) == (
        'metrics text has no series matching bff_http_active_connections{server="pub"} '
        '(bff_http_active_connections has: {server="public"}, {server="admin"}, '
        '{server="internal"})'
    )


def test_an_unknown_name_lists_names_that_look_close() -> None:
    with pytest.raises(MeasurementError) as caught:
        series_value(TEXT, parse_selector("bff_http_open_connections"))
    assert str(caught.value) == (
        "metrics text has no metric bff_http_open_connections "
        "(similar: bff_http_max_connections, bff_http_active_connections)"
    )
    with pytest.raises(MeasurementError, match=r"^metrics text has no metric up$"):
        series_value(TEXT, parse_selector("up"))


def test_a_nan_among_aggregated_series_is_not_a_value() -> None:
    with pytest.raises(
        MeasurementError, match=r'^metrics text: pool_ratio\{pool="replica"\} is NaN$'
    ):
        series_value(TEXT, parse_selector("sum(pool_ratio)"))
    found = select_series(TEXT, parse_selector('pool_ratio{pool="main"}'))
    assert [(s.name, s.labels, s.value) for s in found] == [("pool_ratio", {"pool": "main"}, 0.5)]


# -- the config key -----------------------------------------------------------------------------


def write_env(tmp_path: Path, selector: str) -> Path:
    path = tmp_path / "synthetic.toml"
    body = f"""
        [environments.staging]
        base_url = "http://127.0.0.1:9"

        [environments.staging.params]
        connections_metric = '{selector}'
        """
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_a_selector_in_the_config_is_kept_as_written(tmp_path: Path) -> None:
    selector = 'sum(bff_http_active_connections{server=~"public|admin"})'
    config = load_config(path=write_env(tmp_path, selector), environment="staging", environ={})
    connections_metric = portal_settings(config).connections_metric
    assert connections_metric == selector
    assert parse_selector(connections_metric).aggregation == "sum"


def test_a_malformed_selector_stops_the_config_naming_the_key(tmp_path: Path) -> None:
    path = write_env(tmp_path, 'bff_http_active_connections{server="public"')
    config = load_config(path=path, environment="staging", environ={})
    with pytest.raises(ConfigError) as caught:
        portal_settings(config)  # the catalogue's settings: read when its checks are collected
    assert str(caught.value) == (
        f"{path}: environments.staging.params.connections_metric: expected ',' or '}}' after "
        "a label matcher at character 44 of 'bff_http_active_connections{server=\"public\"'"
    )
