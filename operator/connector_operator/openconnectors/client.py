"""`InstancesClient`: the calls the operator makes against `/instances` (and for OAuth's consent
URL), over httpx, each bounded in time, size and concurrency whatever the platform does.

One httpx.AsyncClient is shared by the whole operator (connection pooling), on aiohttp's
connections (`transport`: a quarter of the CPU per call of httpx's own); the platform URL and
the account secrets vary per object and travel with each call. Every byte the platform returns is
treated as hostile, because `spec.apiURL` is a tenant's choice:

- time: one overall deadline per call (connect, send and the whole body; httpx's own timeouts are
  per read, and a server trickling a byte every ten seconds never trips them);
- concurrency: `max_in_flight_per_host` calls per platform host and `max_in_flight` in total
  (`slots`), shared by namespaces in turn (a call names its object's: `namespace=`), one
  namespace holding at most `max_in_flight_per_namespace` of either (`fair`), so neither a slow
  host nor a tenant naming several can take every slot;
- accounts: a call made for an account passes the account's gate (`budget`: its circuit breaker
  and a slot of its `maxInFlight` first, its token last, right before the call goes), every page
  of a search included, and reports its outcome to it; waiting there is bounded on its own and
  does not eat into the call's deadline;
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

This module owns the calls and their bounds in time and concurrency; reading and judging what the
platform answers is `answers`', and the account secrets a call carries are `credentials`'.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict, Unpack

import aiohttp
import httpx

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.answers import (
    MAX_FOUND,
    MAX_LISTED,
    MIB,
    Answer,
    Refused,
    api_error,
    detached,
    gathered,
    instance,
    kept,
    prefixed,
    read,
)
from connector_operator.openconnectors.budget import AccountGate, Admission, succeeded
from connector_operator.openconnectors.consent import Consent
from connector_operator.openconnectors.credentials import Credentials
from connector_operator.openconnectors.instance import Instance
from connector_operator.openconnectors.redaction import Redactor, request_id
from connector_operator.openconnectors.request import Request, admitted, granted, sent_values
from connector_operator.openconnectors.slots import Slots
from connector_operator.openconnectors.transport import cause, timed_out, transports

__all__ = [
    "AccountGate",  # re-exported (budget's)
    "Bounds",
    "Consent",  # re-exported (consent's)
    "Credentials",  # re-exported (credentials')
    "Instance",  # re-exported (instance's)
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
SuccessListener = Callable[[str, Credentials], None]

PAGE_SIZE = 200
# How a call ends without a usable answer: refused while reading, out of time, or broken below
# HTTP (an unparseable URL included). `_failure` says which.
_NO_ANSWER = (Refused, TimeoutError, httpx.TransportError, httpx.InvalidURL, aiohttp.ClientError)
# Real page tokens are a few hundred characters; each is sent back and remembered for the search.
MAX_PAGE_TOKEN = 4096


class Bounds(TypedDict, total=False):
    """What bounds every call of one client, each by keyword and optional (`DEFAULT_BOUNDS`).

    `timeout` is the overall deadline of one call, in seconds; `max_in_flight_per_namespace` is
    `max_in_flight_per_host` unless given."""

    timeout: float
    max_in_flight: int
    max_in_flight_per_host: int
    max_in_flight_per_namespace: int | None
    max_response_bytes: int
    max_pages: int


DEFAULT_BOUNDS: Bounds = {
    "timeout": 30.0,
    "max_in_flight": 32,
    "max_in_flight_per_host": 8,
    "max_in_flight_per_namespace": None,
    "max_response_bytes": 5 * MIB,
    "max_pages": 50,
}


class InstancesClient:
    def __init__(
        self,
        *,
        observer: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **bounds: Unpack[Bounds],
    ) -> None:
        """`bounds` as `Bounds` says, each `DEFAULT_BOUNDS`' unless given."""
        given: Bounds = {**DEFAULT_BOUNDS, **bounds}
        timeout, max_in_flight = given["timeout"], given["max_in_flight"]
        if timeout <= 0 or given["max_response_bytes"] < 1 or given["max_pages"] < 1:
            raise ValueError("the deadline, the response cap and the page limit must be positive")
        self._deadline = timeout
        self._max_bytes = given["max_response_bytes"]
        self._max_pages = given["max_pages"]
        self._slots = Slots(
            max_in_flight, given["max_in_flight_per_host"], given["max_in_flight_per_namespace"]
        )
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
        request = Request("POST", api_url, "/instances", credentials, body, secrets=sent_values(body))
        answer = await self._call(request, gate=gate, namespace=namespace)
        return detached(instance, answer)

    async def get(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        request = Request("GET", api_url, f"/instances/{instance_id}", credentials)
        answer = await self._call(request, gate=gate, namespace=namespace)
        return detached(instance, answer)

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
        request = Request("PUT", api_url, path, credentials, body, secrets=sent_values(body))
        answer = await self._call(request, gate=gate, namespace=namespace)
        return detached(instance, answer)

    async def patch(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        body: Mapping[str, Any],
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> Instance:
        """Change what `body` names, and only that (the platform keeps what a PATCH does not name,
        and replaces `tags` wholesale: open-connectors-api.md section 10). An OAuth
        re-authentication goes this way too: no HTTP layer sends a PATCH twice (aiohttp repeats an
        idempotent PUT, unseen, when a kept-alive connection breaks), and a code works once."""
        path, secrets = f"/instances/{instance_id}", sent_values(body)
        # A grant asks for re-authentication, as the vendor documents it (api doc section 14).
        query: dict[str, str | int] | None = {"reAuthenticate": "true"} if granted(body) else None
        request = Request("PATCH", api_url, path, credentials, body, params=query, secrets=secrets)
        return detached(instance, await self._call(request, gate=gate, namespace=namespace))

    async def enable(
        self,
        api_url: str,
        credentials: Credentials,
        instance_id: int,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> None:
        """Enable an instance the platform disabled (after failed refreshes): `PUT .../enabled`."""
        request = Request("PUT", api_url, f"/instances/{instance_id}/enabled", credentials)
        await self._call(request, gate=gate, namespace=namespace)

    async def consent_url(
        self,
        api_url: str,
        credentials: Credentials,
        consent: Consent,
        *,
        gate: AccountGate | None = None,
        namespace: str | None = None,
    ) -> str:
        """The provider's consent URL for `consent` (`GET /elements/{key}/oauth/url`), checked
        (consent.py)."""
        path = f"/elements/{consent.connector_key}/oauth/url"
        request = Request(
            "GET", api_url, path, credentials, params=consent.query(), secrets=(consent.client_secret,)
        )
        answer = await self._call(request, gate=gate, namespace=namespace)
        return detached(consent.url_of, answer)

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
        request = Request("DELETE", api_url, f"/instances/{instance_id}", credentials)
        try:
            await self._call(request, gate=gate, namespace=namespace)
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
            lambda answer: gathered(found, detached(kept, answer, lambda tags: tag in tags), MAX_FOUND),
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
            lambda answer: gathered(found, detached(prefixed, answer, prefix), MAX_LISTED),
            gate=gate, namespace=namespace,
        )  # fmt: skip
        return found

    async def _search(
        self,
        api_url: str,
        credentials: Credentials,
        query: dict[str, str | int],
        take: Callable[[Answer], None],
        *,
        gate: AccountGate | None,
        namespace: str | None,
    ) -> None:
        """`GET /instances` with `query`, page after page, each page handed to `take`."""
        params: dict[str, str | int] = {**query, "pageSize": PAGE_SIZE}
        seen: set[str] = set()
        for _ in range(self._max_pages):
            try:
                request = Request("GET", api_url, "/instances", credentials, params=params)
                answer = await self._call(request, gate=gate, namespace=namespace)
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
        self, request: Request, *, gate: AccountGate | None = None, namespace: str | None = None
    ) -> Answer:
        """One request, within the account's gate, the slots, the deadline and the size cap; a
        non-2xx is raised. The waits for the gate and for the slots are bounded by the deadline
        too, but apart from it: a call that waited still has its whole deadline for the platform."""
        request.credentials.check()
        redactor = request.redactor()
        # A POST, a PUT or a re-authentication's PATCH carries the tenant's configuration, which the
        # platform may hand to the vendor: how it fails is the object's business, not the
        # account's circuit's (circuit.py).
        tenant_input = request.method in ("POST", "PUT") or (
            request.method == "PATCH" and bool(request.secrets)
        )
        async with admitted(gate, self._deadline, namespace, tenant_input) as admission:
            started = time.monotonic()
            failure: errors.OpenConnectorsError | None = None
            try:
                # An unparseable URL fails here, as httpx.InvalidURL; no slot in time, as NoSlot.
                async with self._slots.hold(host := host_of(request.url), namespace, self._deadline):
                    await admission.paced(self._deadline)  # the budget's token, right before it goes
                    started = time.monotonic()  # the deadline and the duration count from here on
                    async with asyncio.timeout(self._deadline):
                        answer = await self._exchange(request, redactor)
            except _NO_ANSWER as error:
                failure = self._failure(request, error, redactor, admission, time.monotonic() - started)
            # Raised outside the except block: httpx errors hold the request, whose headers hold the
            # account secrets, and `from None` would still keep them reachable as __context__.
            if failure is not None:
                raise failure
            admission.record(answer.status)
        return self._answered(request, answer, host, time.monotonic() - started)

    async def _exchange(self, request: Request, redactor: Redactor) -> Answer:
        headers = {"Authorization": request.credentials.header()}
        async with self._http.stream(
            request.method, request.url, json=request.body, params=request.params, headers=headers
        ) as response:
            return await read(response, self._max_bytes, redactor)

    def _failure(
        self, request: Request, error: Exception, redactor: Redactor, admission: Admission, elapsed: float
    ) -> errors.OpenConnectorsError:
        """What a call without a usable answer raises, observed, and told to the account's gate
        unless the fault is ours. Built from text only: it holds no reference to `error`."""
        method, path = request.method, request.path
        if isinstance(error, Refused):
            self._observe(method, str(error.status), elapsed)
            admission.record(error.status)
            kind = errors.ResponseTooLarge if error.too_large else errors.MalformedResponse
            return kind(error.status, error.message)
        if isinstance(error, httpx.InvalidURL):  # ours, not the platform's: no failure of it
            self._observe(method, "network", elapsed)
            return errors.NetworkError(redactor.redact(f"{method} {path}: InvalidURL: {error}"))
        if timed_out(error):
            self._observe(method, "timeout", elapsed)
            admission.record(None)
            deadline = f"no complete answer within {self._deadline:g}s"
            return errors.Timeout(f"{method} {path}: {deadline}")
        self._observe(method, "network", elapsed)
        admission.record(None)
        return errors.NetworkError(redactor.redact(f"{method} {path}: {_described(error)}"))

    def _answered(self, request: Request, answer: Answer, host: str, elapsed: float) -> Answer:
        """A complete answer observed, logged and told to the success listeners; a non-2xx raised."""
        method = request.method
        self._observe(method, str(answer.status), elapsed)
        answer.request_id = request_id(answer.headers.get("elements-request-id"), answer.redactor)
        # One line per call that changes something (reads only at DEBUG); the path has no secrets.
        logger.log(
            logging.DEBUG if method == "GET" else logging.INFO,
            "%s %s -> %d in %.0f ms (request id %s)",
            method, request.path, answer.status, elapsed * 1000, answer.request_id or "-",
        )  # fmt: skip
        if succeeded(answer.status):
            for listener in self._success_listeners:
                listener(host, request.credentials)
        if 200 <= answer.status < 300:
            return answer
        raise api_error(answer)


def _described(error: BaseException) -> str:
    """What broke, for a condition: the type, and the message of a connection failure (host, port,
    the system's or TLS's reason). Other aiohttp errors quote the answer's bytes: type only."""
    behind = cause(error)
    if isinstance(behind, aiohttp.ClientError) and not isinstance(behind, aiohttp.ClientConnectorError):
        return type(behind).__name__
    return f"{type(behind).__name__}: {behind}"


def host_of(url: str) -> str:
    """The platform host: its name, lowercased and without a trailing dot; not its scheme or port
    (see `slots`). The unit of the per-host bound and of the success listeners. An unparseable URL
    fails in httpx."""
    return httpx.URL(url).host.lower().rstrip(".")
