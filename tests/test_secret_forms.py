"""Secrets in every form they travel in: URL-encoded, base64, a Basic header.

The encoded forms are made here by the encoders that make them in the wild
(urllib, httpx, Node's encodeURIComponent, base64), never by the masker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from synthetic.config import load_config
from synthetic.redact import MASK, MIN_SECRET_LENGTH, Masker

SECRETS = [
    "tok-9f8e7d6c5b4a",
    "p@ss w/rd+&=?#%",  # every character an encoder may touch
    "clé-ünïcode-密码",
    "abcd",  # the shortest that is masked
]


def _b64_forms(data: bytes) -> list[str]:
    std = base64.b64encode(data).decode()
    safe = base64.urlsafe_b64encode(data).decode()
    return [std, std.rstrip("="), safe, safe.rstrip("=")]


def _node_encodings(secrets: list[str]) -> list[str]:
    """encodeURIComponent and encodeURI of each secret, by Node itself."""
    script = (
        "const s = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(s.flatMap(x => [encodeURIComponent(x), encodeURI(x)])))"
    )
    done = subprocess.run(
        ["node", "-e", script, json.dumps(secrets)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    found: list[str] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("secret", SECRETS)
def test_url_encoded_forms_are_masked(secret: str) -> None:
    masker = Masker([secret])
    forms = {
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
        quote(secret).lower(),  # lower-case hex, as some encoders write it
        str(httpx.URL("http://h/", params={"q": secret})).split("q=", 1)[1],
    }
    for form in forms:
        masked = masker.text(f"GET /callback?q={form}&page=2")

        assert masked == f"GET /callback?q={MASK}&page=2", form


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_encodings_are_masked() -> None:
    masker = Masker(SECRETS)
    for form in _node_encodings(SECRETS):
        assert masker.text(f"<a href='/x/{form}'>") == f"<a href='/x/{MASK}'>", form


@pytest.mark.parametrize("secret", SECRETS)
def test_base64_forms_are_masked_whole(secret: str) -> None:
    masker = Masker([secret])
    for form in _b64_forms(secret.encode()):
        assert masker.text(f"token {form} end") == f"token {MASK} end", form


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_a_secret_inside_a_longer_base64_text_is_masked_at_every_offset(
    secret: str, offset: int
) -> None:
    masker = Masker([secret])
    data = b"{'k':"[:offset] + b"xyz" * offset + secret.encode() + b"'} and more"
    for form in _b64_forms(data):
        assert masker.text(f"Bearer {form}.sig") == f"Bearer {MASK}.sig", form


def test_a_base64_token_in_a_query_is_masked_percent_encoded_too() -> None:
    secret = "s3cret>>>???"  # its base64 holds "+" and "/"
    encoded = base64.b64encode(b"id:" + secret.encode()).decode()
    assert "+" in encoded or "/" in encoded
    masker = Masker([secret])

    assert masker.text(f"/cb?t={quote(encoded, safe='')}&x=1") == f"/cb?t={MASK}&x=1"


def test_the_basic_header_httpx_builds_from_url_userinfo_is_masked(tmp_path: Path) -> None:
    # A password too short to mask by itself: the pair still is, in base64.
    (tmp_path / "synthetic.toml").write_text(
        '[environments.staging]\nbase_url = "https://monitor:p%40w@bff.example.com"\n'
    )
    config = load_config(path=tmp_path / "synthetic.toml", environment="staging", environ={})
    url = httpx.URL(str(config.environment.base_url))
    request = httpx.Request("GET", url)
    flow = httpx.BasicAuth(url.username, url.password).auth_flow(request)
    header = next(flow).headers["Authorization"]
    assert header.startswith("Basic ")

    assert config.masker.text(f"Authorization: {header}") == f"Authorization: Basic {MASK}"
    assert config.masker.text(str(url)) == f"https://monitor:{MASK}@bff.example.com"


def test_a_url_password_is_masked_decoded_as_clients_send_it(tmp_path: Path) -> None:
    (tmp_path / "synthetic.toml").write_text(
        '[environments.staging]\nredis_url = "redis://:s3cr%2Ft%40pw@cache:6379/0"\n'
    )
    config = load_config(path=tmp_path / "synthetic.toml", environment="staging", environ={})

    assert config.masker.text("AUTH s3cr/t@pw failed") == f"AUTH {MASK} failed"


def test_a_token_as_url_user_name_is_a_secret(tmp_path: Path) -> None:
    (tmp_path / "synthetic.toml").write_text(
        '[alerts]\nheartbeat_url = "https://ghp-1a2b3c4d@hc.example.com/ping"\n'
    )
    config = load_config(path=tmp_path / "synthetic.toml", environ={})

    assert config.masker.text("ping ghp-1a2b3c4d failed") == f"ping {MASK} failed"


def test_a_header_is_a_secret_by_its_name_or_its_variable(tmp_path: Path) -> None:
    (tmp_path / "synthetic.toml").write_text(
        "[environments.sandbox.headers]\n"
        '"X-Portal-Client" = "${PORTAL_CLIENT}"\n'
        '"X-Auth-Token" = "literal-token-7f7f"\n'
        '"X-Env" = "staging"\n'
        'Accept = "application/json"\n'
    )
    config = load_config(
        path=tmp_path / "synthetic.toml", environ={"PORTAL_CLIENT": "client-7f7f7f"}
    )

    assert config.masker.text("client-7f7f7f literal-token-7f7f") == f"{MASK} {MASK}"
    assert config.masker.text("staging application/json") == "staging application/json"


def test_a_variable_in_a_url_path_is_masked_url_encoded(tmp_path: Path) -> None:
    (tmp_path / "synthetic.toml").write_text(
        '[environments.sandbox]\nbase_url = "http://127.0.0.1:9/t/${TENANT}/"\n'
    )
    tenant = "tenant key/42"
    config = load_config(path=tmp_path / "synthetic.toml", environ={"TENANT": tenant})
    sent = str(httpx.URL(str(config.environment.base_url)).join("health"))
    assert tenant not in sent  # httpx encodes it: the raw form alone would not be found

    assert config.masker.text(f"GET {sent}") == f"GET http://127.0.0.1:9/t/{MASK}/health"


@pytest.mark.parametrize("short", ["abc", "a/b", "pw"])
def test_secrets_shorter_than_the_minimum_are_not_masked_in_any_form(short: str) -> None:
    assert len(short) < MIN_SECRET_LENGTH
    masker = Masker([short])
    text = f"{short} {quote(short, safe='')} {base64.b64encode(short.encode()).decode()}"

    assert masker.text(text) == text


def test_ordinary_base64_is_left_alone() -> None:
    masker = Masker(SECRETS)
    body = b"".join(hashlib.sha256(bytes([n])).digest() for n in range(64))
    text = "ETag: " + base64.b64encode(body).decode() + " (cached)"

    assert masker.text(text) == text


@given(
    secret=st.text(min_size=MIN_SECRET_LENGTH, max_size=24),
    before=st.binary(max_size=8),
    after=st.binary(max_size=8),
    urlsafe=st.booleans(),
)
def test_a_secret_never_survives_inside_base64(
    secret: str, before: bytes, after: bytes, urlsafe: bool
) -> None:
    assume("*" not in secret)
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    token = encode(before + secret.encode() + after).decode()

    masked = Masker([secret]).text(f"x {token} y")

    for word in masked.split():
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(word + "=" * (-len(word) % 4))
            except ValueError:
                continue
            assert secret.encode() not in decoded


@given(secret=st.text(min_size=MIN_SECRET_LENGTH, max_size=24), safe=st.sampled_from(["", "/"]))
def test_a_secret_never_survives_url_encoding(secret: str, safe: str) -> None:
    assume("*" not in secret)
    masker = Masker([secret])

    for form in (quote(secret, safe=safe), quote_plus(secret, safe=safe)):
        assert form not in masker.text(f"?a={form}&b=1")


@pytest.mark.timeout(10)
def test_masking_stays_fast_with_many_secrets() -> None:
    # Thirteen secrets, every form of each: a megabyte of text is masked in a
    # fraction of the bound (a hang guard, not a benchmark).
    masker = Masker([f"canary-{n:02d}-Zq8xW3vT" for n in range(13)])
    text = "GET /x?y=Z 100% ok dXNlcm5hbWU6 " * 35_000

    assert masker.text(text) == text
