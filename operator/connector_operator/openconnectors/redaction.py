"""Making platform-supplied text safe to leave the operator: no secret value, one short line.

Everything the client puts into an exception, a log line or an instance fact passes through a
`Redactor` built from the secrets of that call (the account secrets and every configuration value
sent). A server that echoes what it was sent rarely echoes it verbatim, so an occurrence is any of:

- the value itself or one of the forms a server commonly re-encodes it in: URL-encoded (`quote`,
  with and without `/` kept, and `quote_plus`), JSON-escaped (ASCII and not), HTML-escaped, and
  base64 (standard and URL-safe, at each of the three byte alignments, so that a value inside a
  longer encoded string such as `base64("user:" + secret)` is found too);
- matched case-insensitively (a server that upper-cases an echo still leaks it);
- any run of at least `FRAGMENT` characters of one of those forms: a platform that truncates its
  message in the middle of a value leaks the part it kept;
- for a value shorter than `MIN_SECRET_LENGTH`, only a whole token (not inside a longer word or
  number). Such values are masked (the old rule ignored them), but masking every substring would
  wreck messages ("ab" inside every word), and a fragment of a three-character value inside
  another word says next to nothing about it. The client cannot tell a secret value from a
  literal one ("50"), so refusing short values up front is not an option.

Only the first `SCAN_LIMIT` characters of a text are examined (a value cut there is dropped with
what follows), values are recognised by their first `VALUE_PREFIX` characters, and the result is
whitespace-collapsed, stripped of control and format characters (no forged log lines, no
terminal escapes) and truncated to `MAX_MESSAGE`.

`request_id()` decides whether the platform's request id may be quoted at all: only when it
looks like an id and contains no secret.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MAX_MESSAGE = 300
MASK = "[REDACTED]"
# Below this length a value is masked only where it stands as a whole token (see above).
MIN_SECRET_LENGTH = 4
# A run this long of a value (or of an encoded form) is masked on its own. 16 characters of a
# random secret are most of it; a literal configuration value shares 16 characters with ordinary
# text rarely enough that the over-masking stays rare.
FRAGMENT = 16
SCAN_LIMIT = 16 * 1024
VALUE_PREFIX = 4096
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID}}}")
_URLSAFE = str.maketrans("+/", "-_")
_WORD = "0-9A-Za-z"


class Redactor:
    """The secrets of one call, prepared for masking; build one per call (cheap for short values)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        alternatives: set[str] = set()
        self._windows: set[str] = set()
        for secret in {s for s in secrets if s}:
            whole_token = len(secret) < MIN_SECRET_LENGTH
            for form in _forms(secret[:VALUE_PREFIX], base64_too=not whole_token):
                if len(form) >= FRAGMENT:
                    folded = _fold(form)
                    self._windows.update(folded[i : i + FRAGMENT] for i in range(len(folded) - FRAGMENT + 1))
                elif whole_token:
                    alternatives.add(rf"(?<![{_WORD}]){re.escape(form)}(?![{_WORD}])")
                else:
                    alternatives.add(re.escape(form))
        # Longest first, so that a value containing another is masked whole.
        ordered = sorted(alternatives, key=len, reverse=True)
        self._pattern = re.compile("|".join(ordered), re.IGNORECASE) if ordered else None

    def mask(self, text: str) -> str:
        """`text` with every occurrence masked; nothing else changed."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return self._mask_fragments(text) if self._windows else text

    def redact(self, text: str, limit: int = MAX_MESSAGE) -> str:
        """One safe line of at most `limit` characters."""
        cut = len(text) > SCAN_LIMIT
        text = self.mask(text[:SCAN_LIMIT])
        # Collapsing whitespace can join the parts of a value that held a newline: mask again.
        text = self.mask(_one_line(text))
        if cut:
            # A value straddling the cut is caught from FRAGMENT characters on; drop what may be left.
            text = text[: max(0, len(text) - FRAGMENT)] + "…"
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def _mask_fragments(self, text: str) -> str:
        folded = _fold(text)
        covered = bytearray(len(text))
        for start in range(len(text) - FRAGMENT + 1):
            if folded[start : start + FRAGMENT] in self._windows:
                covered[start : start + FRAGMENT] = b"\x01" * FRAGMENT
        if not any(covered):
            return text
        parts: list[str] = []
        for index, char in enumerate(text):
            if not covered[index]:
                parts.append(char)
            elif index == 0 or not covered[index - 1]:
                parts.append(MASK)
        return "".join(parts)


def redact(text: str, secrets: Iterable[str], limit: int = MAX_MESSAGE) -> str:
    return Redactor(secrets).redact(text, limit)


def request_id(value: object, redactor: Redactor) -> str | None:
    """The platform's request id if it may be quoted: id-shaped (`[A-Za-z0-9._:-]`, at most 128
    characters) and free of any secret. Anything else is dropped: an id is for finding a call in
    the platform's logs, and one that needs redacting or truncating is no longer useful for that."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        return None
    return value if redactor.mask(value) == value else None


def _forms(value: str, *, base64_too: bool) -> set[str]:
    raw = value.encode("utf-8", "surrogatepass")
    forms = {
        value,
        quote(raw, safe=""),
        quote(raw),
        quote_plus(raw),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        html.escape(value),
    }
    if base64_too:
        forms.update(_base64_cores(raw))
    return {form for form in forms if form}


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend on `raw` alone, for each alignment of `raw` in a longer
    input: with `shift` bytes before it, characters from ceil(8*shift/6) to floor(8*(shift+n)/6)."""
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode()
        core = encoded[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6]
        if len(core) >= MIN_SECRET_LENGTH:
            cores.update((core, core.translate(_URLSAFE)))
    return cores


def _fold(text: str) -> str:
    """Lower case, one character for one (str.lower() lengthens a few, such as "İ")."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _one_line(text: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())
