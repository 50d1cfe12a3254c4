"""Making platform-supplied text safe to leave the operator: no secret value, one short line.

Everything the client puts into an exception, a log line or an instance fact passes through a
`Redactor` made from the secrets of that call (the account secrets first, then every
configuration value sent). A server that echoes what it was sent rarely echoes it verbatim, so an
occurrence is any of:

- the value itself or one of the forms a server commonly re-encodes it in: URL-encoded (`quote`,
  with and without `/` kept, and `quote_plus`), JSON-escaped (ASCII and not), HTML-escaped, and
  base64 (standard and URL-safe, at each of the three byte alignments, so that a value inside a
  longer encoded string such as `base64("user:" + secret)` is found too);
- matched case-insensitively (a server that upper-cases an echo still leaks it);
- any run of a value as it is, of at least `FRAGMENT` characters within the value's first
  `FRAGMENT_HEAD` and of at least `FRAGMENT + FRAGMENT_STRIDE - 1` beyond (a window every
  `FRAGMENT_STRIDE` characters, extended both ways on a match): a platform that truncates its
  message in the middle of a value leaks the part it kept;
- for a value shorter than `MIN_SECRET_LENGTH`, only a whole token (not inside a longer word or
  number). Such values are masked (the old rule ignored them), but masking every substring would
  wreck messages ("ab" inside every word), and a fragment of a three-character value inside
  another word says next to nothing about it. The client cannot tell a secret value from a
  literal one ("50"), so refusing short values up front is not an option.

Bounds, because a tenant chooses the values (hundreds of KiB of configuration) and the platform
chooses the text: nothing is prepared until a text needs masking, encoded forms only for values
that fit in the text, fragment windows for at most `FRAGMENT_BUDGET` in all (every value's head
first, in the caller's order: account secrets first), only the first `SCAN_LIMIT` characters of
a text are examined (a value cut there is dropped with what follows), and the result is
whitespace-collapsed, stripped of control and format characters (no forged log lines, no terminal
escapes) and truncated to `MAX_MESSAGE`.

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
# A run this long of a value is masked on its own. 16 characters of a random secret are most of
# it; a literal configuration value shares 16 characters with ordinary text rarely enough.
FRAGMENT = 16
FRAGMENT_HEAD = 256
FRAGMENT_STRIDE = 64
FRAGMENT_BUDGET = 16384
SCAN_LIMIT = 16 * 1024
MAX_REQUEST_ID = 128
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_REQUEST_ID}}}")
_URLSAFE = str.maketrans("+/", "-_")
_WORD = re.compile(r"[0-9a-z]")


class Redactor:
    """The secrets of one call; what masking needs is prepared on first use, and only for values
    that fit in the text at hand (every encoded form is at least the value's length minus one)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Ordered (account secrets first, for the fragment budget) and without duplicates.
        self._secrets = list(dict.fromkeys(s for s in secrets if s))
        self._forms: dict[str, list[tuple[str, bool]]] = {}  # value -> [(folded form, whole token)]
        self._folded: list[str] = []
        self._windows: dict[str, tuple[int, int]] | None = None  # window -> (value index, offset)

    def mask(self, text: str) -> str:
        """`text` with every occurrence masked; nothing else changed."""
        if not self._secrets or not text:
            return text
        folded = _fold(text)
        covered = bytearray(len(text))
        for secret in self._secrets:
            if len(secret) <= len(text) + 1:
                for form, whole_token in self._forms_of(secret):
                    _cover(folded, form, whole_token, covered)
        if len(text) >= FRAGMENT:
            self._cover_fragments(folded, covered)
        return _apply(text, covered)

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

    def _forms_of(self, secret: str) -> list[tuple[str, bool]]:
        forms = self._forms.get(secret)
        if forms is None:
            whole_token = len(secret) < MIN_SECRET_LENGTH
            folded = {_fold(form) for form in _forms(secret, base64_too=not whole_token)}
            forms = self._forms[secret] = [(form, whole_token) for form in folded]
        return forms

    def _cover_fragments(self, folded: str, covered: bytearray) -> None:
        windows = self._fragment_windows()
        start = 0
        while start <= len(folded) - FRAGMENT:
            hit = windows.get(folded[start : start + FRAGMENT])
            if hit is None:
                start += 1
                continue
            value, offset = self._folded[hit[0]], hit[1]
            left, back = start, offset  # extend the match both ways along the value
            while left > 0 and back > 0 and folded[left - 1] == value[back - 1]:
                left, back = left - 1, back - 1
            right, ahead = start + FRAGMENT, offset + FRAGMENT
            while right < len(folded) and ahead < len(value) and folded[right] == value[ahead]:
                right, ahead = right + 1, ahead + 1
            covered[left:right] = b"\x01" * (right - left)
            start = max(start + 1, right - FRAGMENT + 1)

    def _fragment_windows(self) -> dict[str, tuple[int, int]]:
        if self._windows is None:
            self._folded = [_fold(secret) for secret in self._secrets]
            heads = (range(min(len(v), FRAGMENT_HEAD) - FRAGMENT + 1) for v in self._folded)
            tails = (range(FRAGMENT_HEAD, len(v) - FRAGMENT + 1, FRAGMENT_STRIDE) for v in self._folded)
            self._windows = {}
            for pass_ in (heads, tails):
                for index, offsets in enumerate(pass_):
                    if len(self._windows) + len(offsets) > FRAGMENT_BUDGET:
                        break
                    value = self._folded[index]
                    for offset in offsets:
                        self._windows.setdefault(value[offset : offset + FRAGMENT], (index, offset))
        return self._windows


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


def _cover(folded: str, form: str, whole_token: bool, covered: bytearray) -> None:
    start = folded.find(form)
    while start != -1:
        end = start + len(form)
        if not whole_token or (
            (start == 0 or not _WORD.match(folded, start - 1)) and not _WORD.match(folded, end)
        ):
            covered[start:end] = b"\x01" * len(form)
        start = folded.find(form, start + 1)


def _apply(text: str, covered: bytearray) -> str:
    """`text` with each run of covered characters replaced by one MASK."""
    if not any(covered):
        return text
    parts: list[str] = []
    for index, char in enumerate(text):
        if not covered[index]:
            parts.append(char)
        elif index == 0 or not covered[index - 1]:
            parts.append(MASK)
    return "".join(parts)


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
