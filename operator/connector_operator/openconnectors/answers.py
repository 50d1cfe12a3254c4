"""The platform's answers, read as hostile: a body streamed within its cap, JSON decoded exactly,
search pages filtered, what a whole search keeps bounded, and a non-2xx turned into the error it
means.

`InstancesClient` (client.py) makes the calls; this module owns what comes back. An `Answer` is a
complete response read within the bounds: its body is refused past the size cap (Content-Length is
checked first) and when compressed, since the cap must hold for what is decoded. Parsing raises
`MalformedResponse` without a traceback (`detached`), and error messages are redacted with the
call's `Redactor`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

import httpx

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.instance import (
    MAX_COMPARED,
    MAX_TAGS,
    Instance,
    instance_id_of,
    tags_of,
)
from connector_operator.openconnectors.redaction import Redactor, request_id

__all__ = [
    "MAX_FOUND",
    "MAX_LISTED",
    "MIB",
    "Answer",
    "Cap",
    "Refused",
    "api_error",
    "detached",
    "gathered",
    "held",
    "instance",
    "kept",
    "prefixed",
    "read",
]

T = TypeVar("T")
MIB = 1024 * 1024


@dataclass
class Answer:
    """A complete response, read within the bounds, and the redactor of the call it answers.

    Memory: a body is up to the cap and its parsed form several times that, and an exception
    keeps every frame it passed through (with their locals) alive while the caller reports it,
    concurrently for many objects. So the body is held here only, `json()` consumes it, and the
    helpers that parse raise without a traceback (`detached`)."""

    status: int
    headers: httpx.Headers
    reason: str
    content: bytes | bytearray  # a bytearray as read: copying it would double the peak
    redactor: Redactor
    request_id: str | None = None

    def json(self) -> Any:
        """The body, decoded; a number with a fraction or an exponent as `Decimal`, exactly as
        written (an id written `9007199254740993.0` is not a float's neighbour: `instance_id_of`)."""
        content, self.content = self.content, b""
        if not content:
            return None
        try:
            return json.loads(content, parse_float=Decimal)
        # RecursionError: nesting deeper than the parser's stack; ArithmeticError: a number beyond
        # what Decimal holds.
        except (ValueError, RecursionError, ArithmeticError):
            pass  # raised outside the except block: a JSONDecodeError holds the whole document
        raise errors.MalformedResponse(self.status, "the platform answered with invalid JSON")


class Refused(Exception):
    """Raised inside the stream so that leaving it closes the connection without reading more."""

    def __init__(self, status: int, message: str, too_large: bool) -> None:
        super().__init__(message)
        self.status, self.message, self.too_large = status, message, too_large


async def read(response: httpx.Response, cap: int, redactor: Redactor) -> Answer:
    """The whole of a streamed response, or `Refused` as soon as it passes `cap` bytes or turns
    out compressed."""
    status = response.status_code
    too_large = f"response larger than {_size(cap)}"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise Refused(status, too_large, too_large=True)
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        raise Refused(status, "the platform answered with a compressed body, which was not asked for", False)
    content = bytearray()
    # aiter_bytes, not aiter_raw: the same bytes once encodings are refused, and it also
    # serves a response that is already in memory (httpx.MockTransport's).
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > cap:
            raise Refused(status, too_large, too_large=True)
    return Answer(status, response.headers, response.reason_phrase, content, redactor)


def detached(parse: Callable[..., T], *args: Any) -> T:
    """`parse(*args)`, re-raising its MalformedResponse without the traceback, whose frames hold
    the parsed answer (a hostile one of 5 MiB parses into tens of MiB)."""
    failure: errors.MalformedResponse | None = None
    try:
        return parse(*args)
    except errors.MalformedResponse as error:
        failure = error
    raise failure.with_traceback(None)


def instance(answer: Answer) -> Instance:
    return Instance.from_json(answer.json(), answer.status, answer.redactor)


def kept(answer: Answer, keep: Callable[[list[str]], bool]) -> list[Instance]:
    """The instances of one search page whose tags `keep` accepts, without their configuration;
    the parsed page is dropped on return. Nothing a search finds is compared with the spec (a
    drift check GETs the instance), and a hostile platform's 5 MiB of configuration per instance
    would otherwise be kept for every page of the search (tenant-findings N9)."""
    page = answer.json()
    if not isinstance(page, list):
        raise errors.MalformedResponse(
            answer.status, "the platform answered a search with something that is not a list"
        )
    return [
        replace(Instance.from_json(item, answer.status, answer.redactor), configuration=())
        for item in page
        if isinstance(item, Mapping) and keep(tags_of(item))
    ]


def prefixed(answer: Answer, prefix: str) -> list[tuple[int, list[str]]]:
    """(id, tags starting with `prefix`) of the instances of one listing page that have such a
    tag; an integer id (`instance_id_of`) is required of those (the rest of the page is not
    looked at)."""
    page = answer.json()
    if not isinstance(page, list):
        raise errors.MalformedResponse(
            answer.status, "the platform answered a listing with something that is not a list"
        )
    found: list[tuple[int, list[str]]] = []
    for item in page:
        # As many, and as long, as an Instance keeps: one instance's tags are bounded (N9).
        raw = tags_of(item) if isinstance(item, Mapping) else []
        tags = [t for t in raw if t.startswith(prefix) and len(t) <= MAX_COMPARED][:MAX_TAGS]
        if not tags:
            continue
        instance_id = instance_id_of(item.get("id"))
        if instance_id is None:
            problem = "the platform listed an instance without an integer id"
            raise errors.MalformedResponse(answer.status, problem)
        found.append((instance_id, tags))
    return found


class Cap(NamedTuple):
    """What one search may keep over all its pages: `finds` instances, holding `size` bytes in
    all (as `held` counts them)."""

    finds: int
    size: int


# What one search may keep over all its pages. The response cap is per page: 50 pages of a hostile
# platform's instances, each kept, held about 1.3 GiB (tenant-findings N9); a count alone still let
# 50 pages of the longest tags keep 250 MiB. A listing holds the operator's marks on one account's
# instances: at most 50 pages of 200, each with a uid, an object and a claim tag, about 10 MiB with
# the longest names the API allows (5 MiB with typical ones). A search by one tag finds one or two,
# and a thousand hold about 1.5 MiB.
MAX_LISTED = Cap(100_000, 16 * MIB)
MAX_FOUND = Cap(1_000, 4 * MIB)
# What a kept find holds besides its strings, in bytes (CPython 3.11, measured with tracemalloc):
# an Instance with its __dict__ and tags tuple about 350, a listing's (id, tags) about 150; and a
# pointer per string.
_INSTANCE_BYTES = 512
_LISTED_BYTES = 192
_POINTER = 8

# What a search keeps: instances (a search by tag) or (id, tags) pairs (the listing).
Find = TypeVar("Find", Instance, tuple[int, list[str]])


def held(find: Instance | tuple[int, list[str]]) -> int:
    """About the bytes a kept find holds: its strings as Python stores them (`sys.getsizeof`, up to
    four bytes a character, so that a flood of non-ASCII tags counts in full) and the objects
    around them."""
    if isinstance(find, Instance):
        facts = (find.element_key, find.element_name, find.hub, find.authentication_type)
        strings = [find.name, find.token, *find.tags, *(f for f in facts if f is not None)]
        strings += [text for pair in find.configuration for text in pair]
        return _INSTANCE_BYTES + sum(map(sys.getsizeof, strings)) + _POINTER * len(strings)
    _, tags = find
    return _LISTED_BYTES + sum(map(sys.getsizeof, tags)) + _POINTER * len(tags)


def gathered(found: list[Find], page: list[Find], cap: Cap) -> None:
    """Keep a page's finds, unless the search would then hold more than `cap`, in finds or in bytes:
    the platform's fault, so the search ends with a clear condition (N9). What it kept is dropped
    here, not when the caller lets go of the error: its traceback holds these lists meanwhile.

    The bytes already kept are counted again for each page (no state outside the lists): bounded by
    `cap.size`, a few milliseconds a page for a legitimate listing."""
    if len(found) + len(page) > cap.finds:
        problem = f"found more than {cap.finds} instances"
    elif sum(map(held, found)) + sum(map(held, page)) > cap.size:
        problem = f"found more than {_size(cap.size)} of instances"
    else:
        found.extend(page)
        return
    found.clear()
    page.clear()
    raise errors.MalformedResponse(200, f"the platform's search {problem}; search stopped")


def api_error(answer: Answer) -> errors.APIError:
    try:
        payload = answer.json()
    except errors.MalformedResponse:
        payload = None
    if not isinstance(payload, Mapping):
        payload = {}
    message = _text(payload.get("message")) or answer.reason or "no message"
    provider = _text(payload.get("providerMessage"))
    if provider:
        message = f"{message} (provider: {provider})"
    rid = answer.request_id or request_id(payload.get("requestId"), answer.redactor)
    retry_after = _retry_after(answer.headers.get("retry-after"))
    return errors.error_for(answer.status, answer.redactor.redact(message), rid, retry_after)


def _text(value: Any) -> str | None:
    if isinstance(value, Decimal):
        value = float(value)  # as it read before numbers were decoded as Decimal
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare here, and the caller's backoff is a safe fallback
    # The caller clamps the delay into its own bounds; NaN and infinity are no delay at all.
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _size(limit: int) -> str:
    for unit, name in ((MIB, "MiB"), (1024, "KiB")):
        if limit >= unit and limit % unit == 0:
            return f"{limit // unit} {name}"
    return f"{limit} bytes"
