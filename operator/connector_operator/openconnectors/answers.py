"""The platform's answers, read as hostile: a body streamed within its cap, JSON decoded exactly,
search pages filtered, and a non-2xx turned into the error it means.

`InstancesClient` (client.py) makes the calls; this module owns what comes back. An `Answer` is a
complete response read within the bounds: its body is refused past the size cap (Content-Length is
checked first) and when compressed, since the cap must hold for what is decoded. Parsing raises
`MalformedResponse` without a traceback (`detached`), and error messages are redacted with the
call's `Redactor`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

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

__all__ = ["MIB", "Answer", "Refused", "api_error", "detached", "instance", "kept", "prefixed", "read"]

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


# What one search may keep over all its pages (the response cap is per page: 50 pages of a hostile
# platform's instances, each kept, held about 1.3 GiB; tenant-findings N9). A listing holds the
# operator's instances of one account, as many as the creations memory takes (MAX_OWNED of
# engine/creations.py); a search by one tag finds one or two.
MAX_LISTED = 100_000
MAX_FOUND = 1_000


def gathered(found: list[T], page: list[T], limit: int) -> None:
    """Keep a page's finds, unless the search would then hold more than `limit`: the platform's
    fault, so the search ends with a clear condition and what it kept is dropped (N9)."""
    if len(found) + len(page) > limit:
        problem = f"the platform's search found more than {limit} instances; search stopped"
        raise errors.MalformedResponse(200, problem)
    found.extend(page)


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
