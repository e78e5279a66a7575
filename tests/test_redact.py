"""synthetic.redact: secrets never leave the process in text or data."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from synthetic.redact import MASK, Masker, is_sensitive_key

TOKEN = "tok-9f8e7d6c5b4a"
PASSWORD = "hunter2-Pa55"


def test_known_secret_is_masked_everywhere_in_text() -> None:
    masker = Masker([TOKEN])

    masked = masker.text(f"GET /x with {TOKEN} failed; retry with {TOKEN}.")

    assert masked == f"GET /x with {MASK} failed; retry with {MASK}."


def test_secrets_added_later_are_masked_too() -> None:
    masker = Masker([TOKEN])
    masker.add(PASSWORD)

    assert masker.text(f"{TOKEN} {PASSWORD}") == f"{MASK} {MASK}"
    assert masker.secrets == {TOKEN, PASSWORD}


def test_known_secrets_are_masked_in_nested_data_keys_and_values() -> None:
    masker = Masker([TOKEN])
    data = {
        "message": f"token {TOKEN} rejected",
        TOKEN: "a key that is a secret",
        "items": [f"x{TOKEN}y", {"deep": (TOKEN, 3)}],
        "count": 3,
        "ratio": 0.5,
        "flag": None,
        7: "non-string key",
    }

    masked = masker.data(data)

    assert masked == {
        "message": f"token {MASK} rejected",
        MASK: "a key that is a secret",
        "items": [f"x{MASK}y", {"deep": [MASK, 3]}],
        "count": 3,
        "ratio": 0.5,
        "flag": None,
        7: "non-string key",
    }
    assert TOKEN not in repr(masked)
    # A copy: the values inside the process stay usable.
    assert data["message"] == f"token {TOKEN} rejected"


def test_a_secret_containing_another_is_masked_whole() -> None:
    short, long = "abcd", "abcd-efgh-ijkl"
    for secrets in ([short, long], [long, short]):
        masker = Masker(secrets)

        assert masker.text(f"[{long}] [{short}]") == f"[{MASK}] [{MASK}]"


@pytest.mark.parametrize("short", ["", "a", "ok", "abc"])
def test_secrets_shorter_than_four_characters_are_ignored(short: str) -> None:
    masker = Masker([short])

    assert masker.secrets == frozenset()
    assert masker.text("a block of ok text: abc") == "a block of ok text: abc"


def test_a_four_character_secret_is_masked() -> None:
    assert Masker(["abcd"]).text("xabcdx") == f"x{MASK}x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:pw1234@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
        ("redis://:pw@cache", f"redis://:{MASK}@cache"),
        ("postgresql://monitor:pw@db/portal", f"postgresql://monitor:{MASK}@db/portal"),
        (
            "connect rediss://user:p:a:ss@h:6380 failed",
            f"connect rediss://user:{MASK}@h:6380 failed",
        ),
        ("see http://host:8080/path@anchor", "see http://host:8080/path@anchor"),
        ("mailto user@example.com", "mailto user@example.com"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert Masker().text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host=db password=s3cret user=m", f"host=db password={MASK} user=m"),
        ("/cb?token=abc123&page=2", f"/cb?token={MASK}&page=2"),
        ("PASSWORD=abc", f"PASSWORD={MASK}"),
        ("api_key=k-123, other=1", f"api_key={MASK}, other=1"),
        ("apikey: zzzz", f"apikey: {MASK}"),
        ("X-Auth-Token: abcdef", f"X-Auth-Token: {MASK}"),
        ("secret=xyz;", f"secret={MASK};"),
        ("routing_key=R0UT1NG", f"routing_key={MASK}"),
    ],
)
def test_key_value_pairs_naming_a_secret_are_masked(text: str, expected: str) -> None:
    masked = Masker().text(text)

    assert masked == expected


@pytest.mark.parametrize(
    "text",
    [
        "GET /callback?access_token=ya29.a0AfH6SM&state=1",
        "refresh_token=1//0gLx-secret",
        "client_secret=GOCSPX-abcdef",
        "db_password=hunter22",
    ],
)
def test_prefixed_sensitive_keys_are_masked_in_text(text: str) -> None:
    key = text.split("=")[0].split("?")[-1]
    assert is_sensitive_key(key)

    masked = Masker().text(text)

    assert text.split("=")[1].split("&")[0] not in masked


@pytest.mark.parametrize("quote", ["'", '"'])
def test_a_quoted_password_is_masked(quote: str) -> None:
    masked = Masker().text(f"host=db password = {quote}s3cret{quote} dbname=portal")

    assert "s3cret" not in masked
    assert masked.startswith("host=db password = ")
    assert masked.endswith(" dbname=portal")


def test_a_quoted_libpq_password_with_spaces_is_masked_whole() -> None:
    masked = Masker().text("host=db password='correct horse battery' dbname=portal")

    assert "horse" not in masked
    assert "battery" not in masked
    assert masked.endswith("dbname=portal")


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "password",
        "db_password",
        "passwd",
        "secret",
        "client_secret",
        "token",
        "X-Auth-Token",
        "access_token",
        "api_key",
        "api-key",
        "apikey",
        "X-API-Key",
        "routing_key",
    ],
)
def test_values_under_sensitive_keys_are_masked(key: str) -> None:
    assert is_sensitive_key(key)

    masked = Masker().data({key: "opaque-value", "nested": [{key: 12345}]})

    assert masked == {key: MASK, "nested": [{key: MASK}]}


@pytest.mark.parametrize(
    "key",
    ["username", "author", "keyboard", "monkey", "tokens_used", "password_hint", "host", 7],
)
def test_ordinary_keys_are_not_sensitive(key: object) -> None:
    assert not is_sensitive_key(key)
    assert Masker().data({key: "plain-value"}) == {key: "plain-value"}


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_empty_values_under_sensitive_keys_stay_visible(empty: object) -> None:
    # "password: null" tells whoever debugs that it was not set.
    assert Masker().data({"password": empty}) == {"password": empty}


def test_text_without_secrets_is_unchanged() -> None:
    masker = Masker([TOKEN, PASSWORD])
    text = "GET https://portal.example.com/health/queues -> 200 in 12 ms (user=monitor)"

    assert masker.text(text) == text
    assert masker.data({"a": [text, 1, None]}) == {"a": [text, 1, None]}


# Digits, spaces and punctuation: no scheme, no "password=", no known secret.
_PLAIN = st.text(alphabet=st.sampled_from("0123456789 .,;:/-_()[]{}#%+\n\t"), max_size=80)


@given(text=_PLAIN)
def test_text_without_secrets_is_unchanged_for_any_text(text: str) -> None:
    assert Masker([TOKEN, PASSWORD]).text(text) == text


@given(
    secret=st.text(min_size=4, max_size=40),
    before=st.text(max_size=40),
    after=st.text(max_size=40),
)
def test_a_known_secret_never_survives_masking(secret: str, before: str, after: str) -> None:
    # A secret made of the mask itself can re-form around it: tested separately.
    assume(MASK not in secret and "*" not in secret)
    masker = Masker([secret])

    assert secret not in masker.text(before + secret + after)
    assert secret not in masker.data({"k": [before + secret + after]})["k"][0]


@given(
    secrets=st.lists(st.text(min_size=4, max_size=12), min_size=1, max_size=5),
    pieces=st.lists(st.text(max_size=10), min_size=1, max_size=6),
)
def test_several_known_secrets_never_survive_masking(secrets: list[str], pieces: list[str]) -> None:
    assume(all("*" not in s for s in secrets))
    masker = Masker(secrets)
    text = "".join(p + s for p, s in zip(pieces, secrets * len(pieces), strict=False))

    masked = masker.text(text)

    # A secret may overlap a longer one and be masked with it, in part;
    # what is left must never be a whole secret.
    for secret in secrets:
        assert secret not in masked


def test_a_secret_ending_with_the_mask_does_not_reform() -> None:
    assert "ab***" not in Masker(["ab***"]).text("abab***")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    ["a_" * 50_000, "word-" * 50_000, "http://" * 50_000, ":" * 100_000 + "@", "x" * 1_000_000],
)
def test_masking_is_linear_on_pathological_text(text: str) -> None:
    # Nested or unbounded quantifiers made these take minutes; the bound is a hang guard.
    assert Masker(["s3cret-token"]).text(text) == text


SECRET = "tok-4f9e2b7c1d8a6e3f5b0c9d2e7a4f1b6c"


@pytest.mark.parametrize("at", range(280, 310, 3))
def test_a_reason_is_masked_before_it_is_cut(at: int) -> None:
    """A secret across the reason's cut is masked whole: cutting first would leave
    its head standing, which masking no longer recognises."""
    from synthetic.outcome import MAX_REASON, one_line, shown_reason

    masker = Masker()
    masker.add(SECRET)
    shown = shown_reason(one_line("x" * at + SECRET + " and the rest"), masker.text)
    assert len(shown) <= MAX_REASON
    assert SECRET[:6] not in shown


@pytest.mark.parametrize("at", [65_500, 65_520, 65_530])
def test_evidence_is_masked_before_it_is_cut(at: int) -> None:
    from synthetic.results import MAX_EVIDENCE_CHARS, masked_json

    masker = Masker()
    masker.add(SECRET)
    evidence = masked_json({"body": "x" * at + SECRET + "y" * 100}, masker.data)
    assert evidence["truncated"] is True
    assert len(evidence["head"]) == MAX_EVIDENCE_CHARS
    assert SECRET[:6] not in evidence["head"]
