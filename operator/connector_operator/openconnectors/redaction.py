"""Removing secret values from text that came back from the platform.

The platform's error messages may echo what it was sent (a provider's message quoting a
rejected key, say). Every message the client raises passes through `redact()` with the
secrets of that request, and is truncated so that a condition stays readable.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_MESSAGE = 300
MASK = "[REDACTED]"
# Very short values would redact ordinary words; nothing that short is a real secret anyway.
MIN_SECRET_LENGTH = 4


def redact(text: str, secrets: Iterable[str], limit: int = MAX_MESSAGE) -> str:
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
