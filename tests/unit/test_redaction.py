"""`openconnectors.redaction`: no secret value survives into a message, in any common encoding, and
messages stay one short line; request ids are quoted only when they look like ids.

Covers masking of every occurrence of every secret, longest secret first so that a secret
containing another is masked whole, secrets overlapping in the text, masking before truncation,
whitespace collapsing and control characters, truncation to the limit with an ellipsis; the echoes
that passed before issue 9 (finding 7): URL-encoded (quote, quote with `/` kept, quote_plus),
JSON-escaped, HTML-escaped, base64 (standard and URL-safe, alone and inside a longer encoded
string), changed case, a truncated echo anywhere in a value of any length, secrets under four
characters (masked as whole tokens only), long texts cut without leaving part of a secret; the
fragment budget keeping the account secrets first and the cost of a huge configuration bounded;
and `request_id()`: shape, length and secret content.
"""

from __future__ import annotations

import base64
import json
import random
import string
from urllib.parse import quote, quote_plus

import pytest

from connector_operator.openconnectors.redaction import (
    FRAGMENT,
    FRAGMENT_STRIDE,
    MASK,
    MAX_MESSAGE,
    MIN_SECRET_LENGTH,
    SCAN_LIMIT,
    Redactor,
    redact,
    request_id,
)

SECRET = "Sup3r/Secret+Value&more=1"  # characters that every encoding changes


def test_every_occurrence_of_every_secret_is_masked() -> None:
    text = "user alpha-secret, org beta-secret; again alpha-secret"
    assert redact(text, ["alpha-secret", "beta-secret"]) == f"user {MASK}, org {MASK}; again {MASK}"


@pytest.mark.parametrize("order", [["abcd", "abcdefgh"], ["abcdefgh", "abcd"]])
def test_a_secret_containing_another_is_masked_whole(order: list[str]) -> None:
    result = redact("token abcdefgh and abcd", order)
    assert result == f"token {MASK} and {MASK}"
    assert "efgh" not in result


def test_a_secret_in_the_middle_of_another_leaves_no_fragment() -> None:
    result = redact("key=xx-inner-yy", ["inner", "xx-inner-yy"])
    assert result == f"key={MASK}"


def test_overlapping_secrets_do_not_survive_whole() -> None:
    secrets = ["abcdefgh", "efghijkl"]
    result = redact("value abcdefghijkl end", secrets)
    assert MASK in result
    for secret in secrets:
        assert secret not in result


def test_secrets_may_be_any_iterable_with_duplicates() -> None:
    assert redact("one s3cret two", (s for s in ["s3cret", "s3cret"])) == f"one {MASK} two"


def test_the_empty_string_is_no_secret() -> None:
    assert redact("a cab is not abc", [""]) == "a cab is not abc"


# Encodings and case (finding 7)


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param(SECRET, id="verbatim"),
        pytest.param(quote(SECRET, safe=""), id="quote"),
        pytest.param(quote(SECRET), id="quote-keeping-slash"),
        pytest.param(quote_plus(SECRET), id="quote_plus"),
        pytest.param(quote(SECRET, safe="").lower(), id="quote-lower-case-hex"),
        pytest.param(json.dumps(SECRET + '"\\\n')[1:-1], id="json-escaped"),
        pytest.param(SECRET.upper(), id="upper-case"),
        pytest.param(SECRET.lower(), id="lower-case"),
        pytest.param(SECRET.swapcase(), id="swapped-case"),
        pytest.param("Sup3r/Secret+Value&amp;more=1", id="html-escaped"),
        pytest.param(base64.b64encode(SECRET.encode()).decode(), id="base64"),
        pytest.param(base64.urlsafe_b64encode(SECRET.encode()).decode(), id="base64-urlsafe"),
    ],
)
def test_an_encoded_or_recased_echo_is_masked(echo: str) -> None:
    secrets = [SECRET, SECRET + '"\\\n']
    result = redact(f"the platform says: invalid value {echo} (see docs)", secrets)
    assert echo not in result
    assert MASK in result
    assert result.startswith("the platform says: invalid value ")
    assert result.endswith(" (see docs)")


@pytest.mark.parametrize("prefix", ["", "u:", "us:", "use:", "user:"])
def test_base64_of_a_secret_inside_a_longer_value_is_masked(prefix: str) -> None:
    # A Basic credential or an encoded header: the secret sits at any byte alignment.
    encoded = base64.b64encode(f"{prefix}{SECRET}".encode()).decode()
    result = redact(f"Authorization: Basic {encoded}", [SECRET])
    assert MASK in result
    # At most the characters that also depend on the prefix or the end survive around the mask.
    assert sum(len(part) for part in result.removeprefix("Authorization: Basic ").split(MASK)) <= 8


def test_a_truncated_echo_is_masked() -> None:
    secret = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=64))
    echo = secret[10 : 10 + FRAGMENT + 5]
    result = redact(f"key ...{echo}... rejected", [secret])
    assert echo not in result
    assert result == f"key ...{MASK}... rejected"


@pytest.mark.parametrize("start", [0, 300, 9000, 19_000])
def test_any_long_run_of_a_long_value_is_masked_whole(start: int) -> None:
    # Beyond its head a value is found by a window every FRAGMENT_STRIDE characters, then extended.
    value = "".join(random.Random(3).choices(string.ascii_letters + string.digits, k=20_000))
    run = value[start : start + FRAGMENT + FRAGMENT_STRIDE - 1]
    assert redact(f"quoted: {run} end", ["account-secret-1", value]) == f"quoted: {MASK} end"


def test_a_value_echoed_whole_is_masked_whole_whatever_its_length() -> None:
    value = "".join(random.Random(4).choices(string.ascii_letters, k=12_000))
    assert redact(f"bad value {value} for key", [value]) == f"bad value {MASK} for key"


def test_account_secrets_keep_their_fragments_when_the_configuration_is_huge() -> None:
    account = "".join(random.Random(5).choices(string.ascii_letters, k=64))
    configuration = ["".join(random.Random(i).choices(string.ascii_letters, k=4096)) for i in range(200)]
    fragment = account[20 : 20 + FRAGMENT]
    assert redact(f"user {fragment}...", [account, *configuration]) == f"user {MASK}..."


def test_the_cost_of_a_huge_configuration_is_bounded() -> None:
    import time
    import tracemalloc

    configuration = ["".join(random.Random(i).choices(string.ascii_letters, k=4096)) for i in range(128)]
    message = "some platform message with words " * 600
    tracemalloc.start()
    started = time.perf_counter()
    redactor = Redactor(["user-secret-0123456789", "org-secret-0123456789", *configuration])
    assert request_id("a1b2c3d4-e5f6-7890-abcd-ef0123456789", redactor) is not None
    assert redactor.redact(message).startswith("some platform message")
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert elapsed < 2.0  # about 0.05 s; the bound only catches a quadratic regression


def test_a_fragment_shorter_than_the_window_is_kept() -> None:
    secret = "q" * 10 + "W" * 30
    assert redact("qqqqqqqqqqWWWW", [secret]) == "qqqqqqqqqqWWWW"


# Short secrets (finding 7: "secrets under 4 characters are never redacted")


@pytest.mark.parametrize("short", ["a", "ab", "X7!"])
def test_a_short_secret_is_masked_as_a_whole_token(short: str) -> None:
    assert len(short) < MIN_SECRET_LENGTH
    result = redact(f"value={short}; '{short}' and {short.upper()} / {quote(short, safe='')}", [short])
    assert result == f"value={MASK}; '{MASK}' and {MASK} / {MASK}"


@pytest.mark.parametrize("short", ["b", "ab", "abc", "50", "00"])
def test_a_short_secret_inside_a_word_or_number_is_left_alone(short: str) -> None:
    text = "a cab is not abcd; HTTP 500, 1500 items"
    assert redact(text, [short]) == text


def test_a_secret_of_the_minimum_length_is_masked_anywhere() -> None:
    secret = "z" * MIN_SECRET_LENGTH
    assert redact(f"x {secret} y x{secret}y", [secret]) == f"x {MASK} y x{MASK}y"


# Shape of the result


def test_whitespace_is_collapsed_into_one_line() -> None:
    assert redact("first line\n  second\tline  ", []) == "first line second line"


def test_control_and_format_characters_cannot_forge_lines_or_escapes() -> None:
    text = "ok\r\n2026-01-01 ERROR forged\x1b[31m red\u202eevil\x00end"
    result = redact(text, [])
    assert result == "ok 2026-01-01 ERROR forged [31m red evil end"
    assert result.isprintable()


def test_a_secret_split_by_a_newline_is_masked_after_collapsing() -> None:
    secret = "two words-here"
    assert redact("value two\nwords-here end", [secret]) == f"value {MASK} end"


def test_long_messages_are_truncated_with_an_ellipsis() -> None:
    result = redact("word " * 200, [])
    assert len(result) == MAX_MESSAGE
    assert result.endswith("…")
    assert result.startswith("word word")


def test_a_message_at_the_limit_is_kept_whole() -> None:
    text = "x" * MAX_MESSAGE
    assert redact(text, []) == text


def test_a_custom_limit_applies() -> None:
    assert redact("abcdefghij", [], limit=5) == "abcd…"


def test_masking_happens_before_truncation() -> None:
    secret = "Sup3r-Secret-Value"
    text = "x" * (MAX_MESSAGE - 10) + secret + " tail"
    result = redact(text, [secret])
    assert len(result) <= MAX_MESSAGE
    for start in range(len(secret) - 3):
        assert secret[start : start + 4] not in result


def test_a_secret_cut_by_the_scan_limit_leaves_no_part_of_itself() -> None:
    # Mostly whitespace collapses to almost nothing, so what stood at the cut reaches the output.
    secret = "Kx9-secret-valu"  # shorter than a fragment: only a whole match would catch it
    for offset in range(1, len(secret)):
        text = " " * (SCAN_LIMIT - offset) + secret + " tail"
        result = redact(text, [secret])
        for size in range(4, len(secret)):
            assert secret[:size] not in result, (offset, result)
        assert result.endswith("…")


def test_a_huge_text_is_cut_before_it_is_scanned() -> None:
    result = redact("y" * 5_000_000, ["not-there"])
    assert len(result) == MAX_MESSAGE


# Request ids (findings 7 and 11)


@pytest.mark.parametrize("value", ["req-1", "a1b2.C3:d4_e5-f6", "x" * 128, 12345])
def test_an_id_shaped_request_id_is_kept(value: object) -> None:
    assert request_id(value, Redactor(["some-account-secret"])) == str(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 129, id="too-long"),
        pytest.param("x" * 2_000_000, id="two-megabytes"),
        pytest.param("", id="empty"),
        pytest.param("req 1", id="space"),
        pytest.param("req\n1", id="newline"),
        pytest.param("req/1", id="slash"),
        pytest.param("réq-1", id="non-ascii"),
        pytest.param(None, id="none"),
        pytest.param(True, id="bool"),
        pytest.param({"id": 1}, id="object"),
    ],
)
def test_a_request_id_that_is_no_id_is_dropped(value: object) -> None:
    assert request_id(value, Redactor(())) is None


@pytest.mark.parametrize(
    "value",
    [
        "account-Secret-0123456789",
        "req-account-Secret-0123456789-1",
        "ACCOUNT-SECRET-0123456789",
        base64.b64encode(b"account-Secret-0123456789").decode().rstrip("="),
    ],
)
def test_a_request_id_carrying_a_secret_is_dropped(value: str) -> None:
    assert request_id(value, Redactor(["account-Secret-0123456789"])) is None
