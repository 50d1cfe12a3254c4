"""`InstancesClient`: the five calls the operator makes against `/instances`, over httpx, each
bounded in time, size and concurrency whatever the platform does.

One httpx.AsyncClient is shared by the whole operator (connection pooling), on aiohttp's
connections (`transport`: a quarter of the CPU per call of httpx's own); the platform URL and
the account secrets vary per object and travel with each call. Every byte the platform returns is
treated as hostile, because `spec.apiURL` is a tenant's choice:

- time: one overall deadline per call (connect, send and the whole body; httpx's own timeouts are
  per read, and a server trickling a byte every ten seconds never trips them);
- concurrency: at most `max_in_flight_per_namespace` calls for the objects of one namespace (a
  call names it: `namespace=`), `max_in_flight_per_host` per platform host and `max_in_flight` in
  total (`slots`), so neither a slow host nor a tenant naming several can take every slot;
- accounts: a call made for an account passes the account's gate first (`budget`: its circuit
  breaker, then its request budget), every page of a search included, and reports its outcome to
  it; waiting there is bounded on its own and does not eat into the call's deadline;
- size: the body is streamed and refused past `max_response_bytes` (Content-Length is checked
  first), compressed answers are not asked for and not accepted, and a search stops after
  `max_pages` pages or at a repeated page token;
- honesty: an instance needs an integer id (in any JSON form: `400001.0` too, read exactly) and a
  token (`instance`), search results must carry the tag searched for, and failures carry the real
  HTTP status;
- secrets: credentials that no HTTP header can carry are refused before any request, and every
  message, log line and request id is redacted (`redaction`).

Retrying is not done here: the caller owns the schedule (backoff with jitter, `Retry-After`), so
that a retry never hides in a hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
import httpx

from connector_operator.api.names import CREDENTIAL_KEYS
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate, Admission, succeeded
from connector_operator.openconnectors.instance import Instance, instance_id_of, tags_of
from connector_operator.openconnectors.redaction import Redactor, request_id
from connector_operator.openconnectors.slots import Slots
from connector_operator.openconnectors.transport import cause, timed_out, transports

__all__ = [
    "AccountGate",
    "Credentials",
    "Instance",
    "InstancesClient",
    "Observer",
    "SuccessListener",
    "host_of",
]

logger = logging.getLogger(__name__)

# (method, status or error name, seconds): lets the metrics layer observe without a dependency here.
Observer = Callable[[str, str, float], None]
# (platform host as `host_of` gives it, credentials): told of every call the platform answered with
# success (see `budget.succeeded`), so that work waiting on that platform can retry now.
SuccessListener = Callable[[str, "Credentials"], None]

T = TypeVar("T")
MIB = 1024 * 1024
PAGE_SIZE = 200
# Real page tokens are a few hundred characters; each is sent back and remembered for the search.
MAX_PAGE_TOKEN = 4096


@dataclass(frozen=True)
class Credentials:
    user_secret: str = field(repr=False)
    organization_secret: str = field(repr=False)

    def header(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"

    def check(self) -> None:
        """Raise `InvalidCredentials` (naming the Secret key, never the value) for a secret that no
        HTTP header can carry. httpx would refuse it itself, but its "Illegal header value" message
        quotes the value, and a UnicodeEncodeError looks transient to the caller."""
        for key, value in zip(CREDENTIAL_KEYS, (self.user_secret, self.organization_secret), strict=True):
            problem = _header_problem(value)
            if problem is not None:
                raise errors.InvalidCredentials(
                    key,
                    f"The account secret under key {key} {problem}, which an HTTP header cannot carry; "
                    "no request was made. Correct the value in the Secret",
                )


@dataclass
class _Answer:
    """A complete response, read within the bounds, and the redactor of the call it answers.

    Memory: a body is up to the cap and its parsed form several times that, and an exception
    keeps every frame it passed through (with their locals) alive while the caller reports it,
    concurrently for many objects. So the body is held here only, `json()` consumes it, and the
    helpers that parse raise without a traceback (`_detached`)."""

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


class _Refused(Exception):
    """Raised inside the stream so that leaving it closes the connection without reading more."""

    def __init__(self, status: int, message: str, too_large: bool) -> None:
        super().__init__(message)
        self.status, self.message, self.too_large = status, message, too_large


class InstancesClient:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_in_flight: int = 32,
        max_in_flight_per_host: int = 8,
        max_in_flight_per_namespace: int | None = None,
        max_response_bytes: int = 5 * MIB,
        max_pages: int = 50,
        observer: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`timeout` is the overall deadline of one call, in seconds; `max_in_flight_per_namespace`
        is `max_in_flight_per_host` unless given."""
        if timeout <= 0 or max_response_bytes < 1 or max_pages < 1:
            raise ValueError("the deadline, the response cap and the page limit must be positive")
        self._deadline = timeout
        self._max_bytes = max_response_bytes
        self._max_pages = max_pages
        self._slots = Slots(max_in_flight, max_in_flight_per_host, max_in_flight_per_namespace)
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {}
        if transport is None:
            transport, mounts = transports(max_in_flight)
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            mounts=mounts,
            headers={
                "Accept": "application/json",
                # Compressed bodies are refused: the size cap must hold for what is decoded.
                "Accept-Encoding": "identity",
                "User-Agent": "open-connectors-operator",
            },
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
        )
        self._observe = observer or (lambda method, outcome, seconds: None)
        self._success_listeners: list[SuccessListener] = []

    def on_success(self, listener: SuccessListener) -> None:
        """Call `listener(host, credentials)` after every call answered with success."""
        self._success_listeners.append(listener)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(
        self,
        api_url: str,
        credentials: Credentials,
        body: Mapping[str, Any],
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        """`namespace`, here and in every call: the object's, for the per-namespace bound (None:
        not bounded per namespace)."""
        answer = await self._call(
            "POST",
            api_url,
            "/instances",
            credentials,
            body,
            secrets=_values(body),
            gate=gate,
            namespace=namespace,
        )
        return _detached(_instance, answer)

    async def get(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        path = f"/instances/{instance_id}"
        answer = await self._call("GET", api_url, path, credentials, gate=gate, namespace=namespace)
        return _detached(_instance, answer)

    async def update(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        body: Mapping[str, Any],
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        path = f"/instances/{instance_id}"
        answer = await self._call(
            "PUT", api_url, path, credentials, body, secrets=_values(body), gate=gate, namespace=namespace
        )
        return _detached(_instance, answer)

    async def retag(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        tags: list[str],
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        """Replace an instance's tags, and only them: a PATCH (the platform replaces `tags`
        wholesale and keeps what the body does not name; open-connectors-api.md section 10)."""
        path = f"/instances/{instance_id}"
        body = {"tags": tags}
        answer = await self._call("PATCH", api_url, path, credentials, body, gate=gate, namespace=namespace)
        return _detached(_instance, answer)

    async def delete(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> None:
        """Delete an instance; one that is already gone counts as deleted."""
        path = f"/instances/{instance_id}"
        try:
            await self._call("DELETE", api_url, path, credentials, gate=gate, namespace=namespace)
        except errors.NotFound:
            logger.info("instance %s was already gone", instance_id)

    async def find_by_tag(
        self,
        api_url: str,
        credentials: Credentials,
        tag: str,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> list[Instance]:
        """The instances carrying exactly `tag`, following the platform's page token; 404 means none.

        The platform's filter is not trusted: an instance without the tag is someone else's, and
        adopting or deleting it would act on another tenant's instance."""
        found: list[Instance] = []
        await self._search(
            api_url, credentials, {"tags[]": tag},
            lambda answer: found.extend(_detached(_kept, answer, lambda tags: tag in tags)),
            gate=gate, namespace=namespace,
        )  # fmt: skip
        return found

    async def find_tagged_with_prefix(
        self,
        api_url: str,
        credentials: Credentials,
        prefix: str,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> list[tuple[int, list[str]]]:
        """(id, its tags starting with `prefix`) of every instance of the account that has one: one
        listing of all its instances, page by page (the platform cannot search by prefix); the
        others are dropped as each page is read. The tags are the raw ones, all of them (an
        `Instance` keeps only the first 50)."""
        found: list[tuple[int, list[str]]] = []
        await self._search(
            api_url, credentials, {},
            lambda answer: found.extend(_detached(_prefixed, answer, prefix)),
            gate=gate, namespace=namespace,
        )  # fmt: skip
        return found

    async def _search(
        self,
        api_url: str,
        credentials: Credentials,
        query: dict[str, str | int],
        take: Callable[[_Answer], None],
        *,
        gate: AccountGate | None,
        namespace: str | None,
    ) -> None:
        """`GET /instances` with `query`, page after page, each page handed to `take`."""
        params: dict[str, str | int] = {**query, "pageSize": PAGE_SIZE}
        seen: set[str] = set()
        for _ in range(self._max_pages):
            try:
                answer = await self._call(
                    "GET", api_url, "/instances", credentials, params=params, gate=gate, namespace=namespace
                )
            except errors.NotFound:
                return
            take(answer)
            cursor = answer.headers.get("elements-next-page-token")
            if not cursor:
                return
            if cursor in seen or len(cursor) > MAX_PAGE_TOKEN:
                problem = "repeated a next-page token" if cursor in seen else "sent an oversized page token"
                raise errors.MalformedResponse(
                    answer.status, f"the platform's search {problem}; search stopped"
                )
            seen.add(cursor)
            params = {**params, "nextPage": cursor}
        raise errors.MalformedResponse(
            answer.status, f"the platform's search did not end within {self._max_pages} pages; search stopped"
        )

    async def _call(
        self,
        method: str,
        api_url: str,
        path: str,
        credentials: Credentials,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
        secrets: tuple[str, ...] = (),
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> _Answer:
        """One request, within the account's gate, the slots, the deadline and the size cap; a
        non-2xx is raised. The gate's wait is bounded by the deadline too, but apart from it: a
        call that waited for its budget still has its whole deadline for the platform."""
        credentials.check()
        redactor = Redactor((*secrets, credentials.user_secret, credentials.organization_secret))
        url = api_url.rstrip("/") + path
        headers = {"Authorization": credentials.header()}
        async with _admitted(gate, self._deadline) as admission:
            started = time.monotonic()
            failure: errors.OpenConnectorsError | None = None
            try:
                # An unparseable URL fails here, as httpx.InvalidURL.
                async with self._slots.hold(host := host_of(url), namespace):
                    started = time.monotonic()  # the deadline and the duration count from the slot on
                    async with asyncio.timeout(self._deadline):
                        answer = await self._exchange(method, url, body, params, headers, redactor)
            except _Refused as refused:
                self._observe(method, str(refused.status), time.monotonic() - started)
                admission.record(refused.status)
                kind = errors.ResponseTooLarge if refused.too_large else errors.MalformedResponse
                failure = kind(refused.status, refused.message)
            except (TimeoutError, httpx.TransportError, httpx.InvalidURL, aiohttp.ClientError) as error:
                if isinstance(error, httpx.InvalidURL):  # ours, not the platform's: no failure of it
                    self._observe(method, "network", time.monotonic() - started)
                    failure = errors.NetworkError(redactor.redact(f"{method} {path}: InvalidURL: {error}"))
                elif timed_out(error):
                    self._observe(method, "timeout", time.monotonic() - started)
                    admission.record(None)
                    deadline = f"no complete answer within {self._deadline:g}s"
                    failure = errors.Timeout(f"{method} {path}: {deadline}")
                else:
                    self._observe(method, "network", time.monotonic() - started)
                    admission.record(None)
                    failure = errors.NetworkError(redactor.redact(f"{method} {path}: {_described(error)}"))
            # Raised outside the except block: httpx errors hold the request, whose headers hold the
            # account secrets, and `from None` would still keep them reachable as __context__.
            if failure is not None:
                raise failure
            admission.record(answer.status)
        elapsed = time.monotonic() - started
        self._observe(method, str(answer.status), elapsed)
        answer.request_id = request_id(answer.headers.get("elements-request-id"), redactor)
        # One line per call that changes something (reads only at DEBUG); the path has no secrets.
        logger.log(
            logging.DEBUG if method == "GET" else logging.INFO,
            "%s %s -> %d in %.0f ms (request id %s)",
            method, path, answer.status, elapsed * 1000, answer.request_id or "-",
        )  # fmt: skip
        if succeeded(answer.status):
            for listener in self._success_listeners:
                listener(host, credentials)
        if 200 <= answer.status < 300:
            return answer
        raise _api_error(answer)

    async def _exchange(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str],
        redactor: Redactor,
    ) -> _Answer:
        async with self._http.stream(method, url, json=body, params=params, headers=headers) as response:
            status, cap = response.status_code, self._max_bytes
            too_large = f"response larger than {_size(cap)}"
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise _Refused(status, too_large, too_large=True)
            if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
                raise _Refused(
                    status, "the platform answered with a compressed body, which was not asked for", False
                )
            content = bytearray()
            # aiter_bytes, not aiter_raw: the same bytes once encodings are refused, and it also
            # serves a response that is already in memory (httpx.MockTransport's).
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > cap:
                    raise _Refused(status, too_large, too_large=True)
            return _Answer(status, response.headers, response.reason_phrase, content, redactor)


def _described(error: BaseException) -> str:
    """What broke, for a condition: the type, and the message of a connection failure (host, port,
    the system's or TLS's reason). Other aiohttp errors quote the answer's bytes: type only."""
    behind = cause(error)
    if isinstance(behind, aiohttp.ClientError) and not isinstance(behind, aiohttp.ClientConnectorError):
        return type(behind).__name__
    return f"{type(behind).__name__}: {behind}"


def _detached(parse: Callable[..., T], *args: Any) -> T:
    """`parse(*args)`, re-raising its MalformedResponse without the traceback, whose frames hold
    the parsed answer (a hostile one of 5 MiB parses into tens of MiB)."""
    failure: errors.MalformedResponse | None = None
    try:
        return parse(*args)
    except errors.MalformedResponse as error:
        failure = error
    raise failure.with_traceback(None)


def _instance(answer: _Answer) -> Instance:
    return Instance.from_json(answer.json(), answer.status, answer.redactor)


def _kept(answer: _Answer, keep: Callable[[list[str]], bool]) -> list[Instance]:
    """The instances of one search page whose tags `keep` accepts; the parsed page is dropped on
    return."""
    page = answer.json()
    if not isinstance(page, list):
        raise errors.MalformedResponse(
            answer.status, "the platform answered a search with something that is not a list"
        )
    return [
        Instance.from_json(item, answer.status, answer.redactor)
        for item in page
        if isinstance(item, Mapping) and keep(tags_of(item))
    ]


def _prefixed(answer: _Answer, prefix: str) -> list[tuple[int, list[str]]]:
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
        tags = [t for t in tags_of(item) if t.startswith(prefix)] if isinstance(item, Mapping) else []
        if not tags:
            continue
        instance_id = instance_id_of(item.get("id"))
        if instance_id is None:
            problem = "the platform listed an instance without an integer id"
            raise errors.MalformedResponse(answer.status, problem)
        found.append((instance_id, tags))
    return found


def _api_error(answer: _Answer) -> errors.APIError:
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


def _values(body: Mapping[str, Any]) -> tuple[str, ...]:
    configuration = body.get("configuration") or {}
    return tuple(str(v) for v in configuration.values()) if isinstance(configuration, Mapping) else ()


def _admitted(gate: AccountGate | None, max_wait: float) -> AbstractAsyncContextManager[Admission]:
    """The gate's admission, or a stand-in that judges nothing for a call without an account."""
    return gate.admit(max_wait) if gate is not None else contextlib.nullcontext(Admission(None))


def host_of(url: str) -> str:
    """The platform host: its name, lowercased and without a trailing dot; not its scheme or port
    (see `slots`). The unit of the per-host bound and of the success listeners. An unparseable URL
    fails in httpx."""
    return httpx.URL(url).host.lower().rstrip(".")


def _header_problem(value: str) -> str | None:
    for char in value:
        if char in "\r\n":
            return "contains a line break (a trailing newline from `kubectl create secret --from-file`?)"
        if char < " " or char == "\x7f":
            return "contains a control character"
        if char > "~":
            return "contains a character outside printable ASCII"
    return None


def _size(limit: int) -> str:
    for unit, name in ((MIB, "MiB"), (1024, "KiB")):
        if limit >= unit and limit % unit == 0:
            return f"{limit // unit} {name}"
    return f"{limit} bytes"
