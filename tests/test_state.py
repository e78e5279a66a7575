"""synthetic.state: the file and Redis stores, samples, rates."""

from __future__ import annotations

import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from synthetic.errors import ConfigError, StateError, SyntheticError
from synthetic.state import (
    STATE_SCHEMA,
    FileStateStore,
    RedisStateStore,
    Sample,
    Samples,
    empty_state,
    merge_samples,
    open_store,
)

# redis_url (a real redis-server) and refused_port.


DOCUMENT: dict[str, Any] = {
    "schema": STATE_SCHEMA,
    "samples": {
        "checks/check_redis.py::check_evictions": {
            "evicted_keys": {"value": 12.0, "at": 1732406400.0}
        },
        "checks/check_whmcs.py::check_failed": {"failed": {"value": 3.0, "at": 1732406460.5}},
    },
}


# --- FileStateStore --------------------------------------------------------------


def test_a_missing_file_loads_as_an_empty_document(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")

    assert store.load() == {"schema": "synthetic.state/v1", "samples": {}}
    assert store.load() == empty_state()
    assert not store.path.exists()


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "results" / "deeper" / "state.json")

    store.save(DOCUMENT)

    assert store.load() == DOCUMENT
    assert FileStateStore(store.path).load() == DOCUMENT
    assert store.description == str(store.path)


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")

    store.save(DOCUMENT)
    store.save(empty_state())

    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_save_replaces_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    big = {
        "schema": STATE_SCHEMA,
        "samples": {f"check{i}": {"n": {"value": i, "at": 0}} for i in range(200)},
    }
    FileStateStore(path).save(big)

    with path.open(encoding="utf-8") as reader_of_the_old_file:
        FileStateStore(path).save(empty_state())

        # A reader that opened the old file still sees all of it: the new
        # one was renamed over it, not written into it.
        assert json.load(reader_of_the_old_file) == big

    assert json.loads(path.read_text(encoding="utf-8")) == empty_state()


def test_a_failed_save_is_a_state_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "keep").write_text("x", encoding="utf-8")

    with pytest.raises(StateError) as info:
        FileStateStore(path).save(DOCUMENT)

    message = str(info.value)
    assert message.startswith(f"{path}: cannot write state")
    assert "\n" not in message
    assert isinstance(info.value, SyntheticError)


def test_a_failed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "keep").write_text("x", encoding="utf-8")

    with pytest.raises(StateError):
        FileStateStore(path).save(DOCUMENT)

    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(
    "content", ["{not json", "", '{"schema": "synthetic.state/v1"', "\x00\x01"]
)
def test_a_corrupt_file_is_a_state_error_and_is_moved_aside(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    store = FileStateStore(path)

    with pytest.raises(StateError) as info:
        store.load()

    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    asides = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(asides) == 1
    assert asides[0].name in message
    assert asides[0].read_text(encoding="utf-8") == content
    assert not path.exists()
    # The next run starts from an empty state.
    assert store.load() == empty_state()


@pytest.mark.parametrize(
    "document",
    [
        {"schema": "synthetic.state/v2", "samples": {}},
        {"samples": {}},
        [STATE_SCHEMA],
        "synthetic.state/v1",
        None,
    ],
)
def test_a_document_with_a_wrong_schema_is_a_state_error(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(StateError) as info:
        FileStateStore(path).load()

    message = str(info.value)
    assert message.startswith(f"{path}: not a synthetic.state/v1 document; moved aside to ")
    # Kept for a post-mortem, never overwritten by the end of the run.
    (aside,) = tmp_path.glob("state.json.corrupt-*")
    assert json.loads(aside.read_text(encoding="utf-8")) == document
    assert not path.exists()


def test_a_document_without_samples_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"schema": STATE_SCHEMA}), encoding="utf-8")

    assert FileStateStore(path).load() == empty_state()


# --- RedisStateStore (a real redis-server) ---------------------------------------


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.mark.slow
def test_redis_round_trip(redis_url: str) -> None:
    environment = unique("staging")
    store = open_store(redis_url, environment=environment, results_dir=Path("unused"))
    assert isinstance(store, RedisStateStore)

    try:
        assert store.load() == empty_state()
        store.save(DOCUMENT)
        assert store.load() == DOCUMENT
    finally:
        store.close()

    raw = redis.Redis.from_url(redis_url).get(f"synthetic:state:{environment}")
    assert raw is not None
    assert json.loads(raw) == DOCUMENT


@pytest.mark.slow
def test_redis_environments_do_not_collide(redis_url: str) -> None:
    staging = RedisStateStore(redis_url, unique("staging"), description="redis")
    production = RedisStateStore(redis_url, unique("production"), description="redis")
    other = {"schema": STATE_SCHEMA, "samples": {"k": {"n": {"value": 1.0, "at": 2.0}}}}

    staging.save(DOCUMENT)
    production.save(other)

    assert staging.load() == DOCUMENT
    assert production.load() == other
    assert staging.key != production.key


@pytest.mark.slow
def test_two_redis_stores_see_each_others_saves(redis_url: str) -> None:
    environment = unique("production")
    controller = RedisStateStore(redis_url, environment, description="redis")
    worker = RedisStateStore(redis_url, environment, description="redis")

    controller.save(DOCUMENT)
    assert worker.load() == DOCUMENT

    worker.save(empty_state())
    assert controller.load() == empty_state()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{not json", "state is not valid JSON"),
        (b"\xff\xfe", "state is not valid JSON"),
        (b'{"schema": "other"}', "not a synthetic.state/v1 document"),
    ],
)
def test_a_bad_redis_document_is_a_state_error(
    redis_url: str,
    raw: bytes,
    problem: str,
) -> None:
    environment = unique("staging")
    redis.Redis.from_url(redis_url).set(f"synthetic:state:{environment}", raw)
    store = RedisStateStore(redis_url, environment, description="redis state store")

    with pytest.raises(StateError) as info:
        store.load()

    assert problem in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["load", "save"])
def test_an_unreachable_redis_is_a_quick_state_error_without_the_password(
    refused_port: int, operation: str
) -> None:
    url = f"redis://:s3cretpw@127.0.0.1:{refused_port}/0"
    store = open_store(url, environment="production", results_dir=Path("unused"))
    action = store.load if operation == "load" else functools.partial(store.save, DOCUMENT)
    started = time.monotonic()

    with pytest.raises(StateError) as info:
        action()

    assert time.monotonic() - started < 5.0
    message = str(info.value)
    assert "s3cretpw" not in message
    assert "\n" not in message
    assert message.startswith("redis state store: cannot")


# --- open_store ------------------------------------------------------------------


def test_open_store_defaults_to_a_file_per_environment(tmp_path: Path) -> None:
    store = open_store(None, environment="staging", results_dir=tmp_path)

    assert isinstance(store, FileStateStore)
    assert store.path == tmp_path / "state-staging.json"


def test_open_store_with_a_path_is_a_file_store(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.json"), environment="staging", results_dir=Path("x"))

    assert isinstance(store, FileStateStore)
    assert store.path == tmp_path / "s.json"


@pytest.mark.parametrize(
    ("url", "description"), [("redis://cache:6379/0", None), ("rediss://:pw@cache/1", "state")]
)
def test_open_store_with_a_redis_url_is_a_redis_store(url: str, description: str | None) -> None:
    store = open_store(url, environment="production", results_dir=Path("x"), describe=description)

    assert isinstance(store, RedisStateStore)
    assert store.key == "synthetic:state:production"
    assert store.description == (description or "redis state store")


@pytest.mark.parametrize("spec", ["ftp://x", "ftp://user:s3cretpw@host/state", "s3://bucket/key"])
def test_open_store_rejects_other_schemes(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(spec, environment="production", results_dir=Path("x"))

    scheme = spec.split("://")[0]
    assert f"'{scheme}://'" in str(info.value)
    assert "s3cretpw" not in str(info.value)


# --- Samples ---------------------------------------------------------------------


def test_previous_and_record() -> None:
    samples = Samples({"queue": {"value": 5, "at": 100.0}}, now=160.0)

    assert samples.previous("queue") == Sample(5.0, 100.0)
    assert samples.previous("other") is None

    samples.record("queue", 7)

    assert samples.recorded == {"queue": {"value": 7.0, "at": 160.0}}
    # The previous sample is last run's, not what this run recorded.
    assert samples.previous("queue") == Sample(5.0, 100.0)


def test_record_without_now_uses_the_clock() -> None:
    samples = Samples({})
    before = time.time()

    samples.record("queue", 1)

    assert before <= samples.recorded["queue"]["at"] <= time.time()


@pytest.mark.parametrize(
    ("previous", "counter", "expected"),
    [
        (None, 10.0, None),
        (10.0, 25.0, 15.0),
        (10.0, 10.0, 0.0),
        (100.0, 7.0, 7.0),
        (100.0, 0.0, 0.0),
    ],
)
def test_increase(previous: float | None, counter: float, expected: float | None) -> None:
    before = {} if previous is None else {"failed": {"value": previous, "at": 1.0}}
    samples = Samples(before, now=2.0)

    assert samples.increase("failed", counter) == expected
    assert samples.recorded["failed"] == {"value": counter, "at": 2.0}


@pytest.mark.parametrize(
    ("previous", "now", "counter", "per_seconds", "expected"),
    [
        ({"value": 100, "at": 1000.0}, 1120.0, 160, 60.0, 30.0),
        ({"value": 100, "at": 1000.0}, 1120.0, 160, 1.0, 0.5),
        ({"value": 100, "at": 1000.0}, 1030.0, 40, 60.0, 80.0),  # reset: 40 in 30 s
        ({"value": 100, "at": 1000.0}, 1000.0, 160, 60.0, None),  # no time elapsed
        ({"value": 100, "at": 2000.0}, 1000.0, 160, 60.0, None),  # clock went back
        (None, 1000.0, 160, 60.0, None),  # first run
    ],
)
def test_rate(
    previous: dict[str, float] | None,
    now: float,
    counter: float,
    per_seconds: float,
    expected: float | None,
) -> None:
    samples = Samples({} if previous is None else {"evicted": previous}, now=now)

    rate = samples.rate("evicted", counter, per_seconds=per_seconds)

    assert rate == (pytest.approx(expected) if expected is not None else None)
    assert samples.recorded["evicted"] == {"value": float(counter), "at": now}


@pytest.mark.parametrize(
    "entry",
    [
        None,
        5,
        "12",
        [1, 2],
        {},
        {"value": 1},
        {"at": 1},
        {"value": "many", "at": 1},
        {"value": None, "at": 1},
        {"value": 1, "at": [1]},
    ],
)
def test_malformed_previous_entries_are_ignored(entry: Any) -> None:
    samples = Samples({"failed": entry}, now=10.0)

    assert samples.previous("failed") is None
    assert samples.increase("failed", 3) is None
    assert samples.rate("failed", 3) is None
    assert samples.recorded["failed"] == {"value": 3.0, "at": 10.0}


def test_merge_samples_replaces_a_checks_samples() -> None:
    document: dict[str, Any] = {
        "schema": STATE_SCHEMA,
        "samples": {"a": {"x": {"value": 1.0, "at": 1.0}, "y": {"value": 2.0, "at": 1.0}}},
    }

    merge_samples(document, "a", {"x": {"value": 5.0, "at": 9.0}})
    merge_samples(document, "b", {"z": {"value": 3.0, "at": 9.0}})
    merge_samples(document, "c", {})

    # "y" was not recorded this run: it is gone, so samples cannot pile up;
    # "c" recorded nothing and keeps nothing it did not have.
    assert document["samples"] == {
        "a": {"x": {"value": 5.0, "at": 9.0}},
        "b": {"z": {"value": 3.0, "at": 9.0}},
    }


def test_merge_samples_into_a_document_without_samples() -> None:
    document: dict[str, Any] = {"schema": STATE_SCHEMA}

    merge_samples(document, "a", {"x": {"value": 1.0, "at": 2.0}})

    assert document == {"schema": STATE_SCHEMA, "samples": {"a": {"x": {"value": 1.0, "at": 2.0}}}}


def test_samples_survive_two_runs_through_a_file_store(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state.json")
    key = "checks/check_redis.py::check_evictions"

    first = Samples(store.load()["samples"].get(key, {}), now=1000.0)
    assert first.rate("evicted_keys", 50) is None
    document = store.load()
    merge_samples(document, key, first.recorded)
    store.save(document)

    second = Samples(store.load()["samples"].get(key, {}), now=1060.0)
    assert second.rate("evicted_keys", 110) == pytest.approx(60.0)


def test_a_redis_that_never_answers_costs_the_state_store_one_timeout() -> None:
    """The state is read when a run starts (by every process) and written when it
    ends: a Redis that accepts and never answers fails each within one socket
    timeout, not once per retry (only the alert store retries: it must not lose
    a notice)."""
    import socket

    from synthetic.redis_document import REDIS_TIMEOUT_S
    from synthetic.state import RedisStateStore

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts, never answers
        port = silent.getsockname()[1]
        store = RedisStateStore(f"redis://127.0.0.1:{port}/0", "prod", description="redis state")
        started = time.monotonic()
        with pytest.raises(StateError, match=r"^redis state: cannot read state: "):
            store.load()
        took = time.monotonic() - started
        store.close()
    assert took < 2 * REDIS_TIMEOUT_S
