"""`openconnectors.redaction.redact()`: no secret value survives into a message, and messages stay short.

Covers masking of every occurrence of every secret, longest secret first so that a secret
containing another is masked whole, secrets overlapping in the text, masking before truncation,
whitespace collapsing, truncation to the limit with an ellipsis, and that very short strings
(the empty string included) are not treated as secrets.
"""

from __future__ import annotations

import pytest

from connector_operator.openconnectors.redaction import MASK, MAX_MESSAGE, MIN_SECRET_LENGTH, redact


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


@pytest.mark.parametrize("short", ["", "a", "ab", "abc"])
def test_very_short_strings_are_not_treated_as_secrets(short: str) -> None:
    text = "a cab is not abc"
    assert len(short) < MIN_SECRET_LENGTH
    assert redact(text, [short]) == text


def test_a_secret_of_the_minimum_length_is_masked() -> None:
    secret = "z" * MIN_SECRET_LENGTH
    assert redact(f"x {secret} y", [secret]) == f"x {MASK} y"


def test_whitespace_is_collapsed_into_one_line() -> None:
    assert redact("first line\n  second\tline  ", []) == "first line second line"


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
