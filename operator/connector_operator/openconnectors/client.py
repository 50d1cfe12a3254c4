"""`InstancesClient`: the five calls the operator makes against `/instances`, over httpx.

One httpx.AsyncClient is shared by the whole operator (connection pooling); the platform URL
and the account secrets vary per object and travel with each call. A semaphore bounds the calls
in flight, because the platform's quotas are per account and a burst of a thousand objects
must not become a thousand parallel requests. Retrying is not done here: the caller owns the
schedule (backoff with jitter, `Retry-After`), so that a retry never hides in a hot loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.redaction import redact

logger = logging.getLogger(__name__)

# (method, status or error name, seconds): lets the metrics layer observe without a dependency here.
Observer = Callable[[str, str, float], None]


@dataclass(frozen=True)
class Credentials:
    user_secret: str = field(repr=False)
    organization_secret: str = field(repr=False)

    def header(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"


@dataclass(frozen=True)
class Instance:
    """The parts of an ElementInstance the operator uses."""

    id: int
    token: str = field(repr=False)
    name: str = ""
    tags: tuple[str, ...] = ()
    valid: bool = True
    disabled: bool = False
    element_key: str | None = None
    element_name: str | None = None
    hub: str | None = None
    authentication_type: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> Instance:
        try:
            return cls._parse(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            # A success that is not an instance is the platform's fault, reported as one.
            raise errors.ServerError(
                200, "the platform answered with something that is not an instance"
            ) from None

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> Instance:
        element = data.get("element") or {}
        return cls(
            id=int(data["id"]),
            token=str(data.get("token") or ""),
            name=str(data.get("name") or ""),
            tags=tuple(str(t) for t in data.get("tags") or ()),
            valid=bool(data.get("valid", True)),
            disabled=bool(data.get("disabled", False)),
            element_key=element.get("key"),
            element_name=element.get("name"),
            hub=element.get("hub"),
            authentication_type=element.get("authenticationType"),
        )


class InstancesClient:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_in_flight: int = 32,
        observer: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "open-connectors-operator"},
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
        )
        self._slots = asyncio.Semaphore(max_in_flight)
        self._observe = observer or (lambda method, outcome, seconds: None)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create(self, api_url: str, credentials: Credentials, body: Mapping[str, Any]) -> Instance:
        data = await self._call("POST", api_url, "/instances", credentials, body, secrets=_values(body))
        return Instance.from_json(data)

    async def get(self, api_url: str, credentials: Credentials, instance_id: int) -> Instance:
        return Instance.from_json(await self._call("GET", api_url, f"/instances/{instance_id}", credentials))

    async def update(
        self, api_url: str, credentials: Credentials, instance_id: int, body: Mapping[str, Any]
    ) -> Instance:
        path = f"/instances/{instance_id}"
        return Instance.from_json(
            await self._call("PUT", api_url, path, credentials, body, secrets=_values(body))
        )

    async def delete(self, api_url: str, credentials: Credentials, instance_id: int) -> None:
        """Delete an instance; one that is already gone counts as deleted."""
        try:
            await self._call("DELETE", api_url, f"/instances/{instance_id}", credentials)
        except errors.NotFound:
            logger.info("instance %s was already gone", instance_id)

    async def find_by_tag(self, api_url: str, credentials: Credentials, tag: str) -> list[Instance]:
        """All instances carrying `tag`, following the platform's page cursor; 404 means none."""
        found: list[Instance] = []
        params: dict[str, str | int] = {"tags[]": tag, "pageSize": 200}
        while True:
            try:
                page, headers = await self._call_with_headers(
                    "GET", api_url, "/instances", credentials, params=params
                )
            except errors.NotFound:
                return found
            if not isinstance(page, list):
                raise errors.ServerError(
                    200, "the platform answered a search with something that is not a list"
                )
            found.extend(Instance.from_json(item) for item in page)
            cursor = headers.get("elements-next-page-token")
            if not cursor:
                return found
            params = {**params, "nextPage": cursor}

    async def _call(
        self,
        method: str,
        api_url: str,
        path: str,
        credentials: Credentials,
        body: Mapping[str, Any] | None = None,
        *,
        secrets: tuple[str, ...] = (),
    ) -> Any:
        data, _ = await self._call_with_headers(method, api_url, path, credentials, body, secrets=secrets)
        return data

    async def _call_with_headers(
        self,
        method: str,
        api_url: str,
        path: str,
        credentials: Credentials,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str | int] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> tuple[Any, httpx.Headers]:
        hidden = (*secrets, credentials.user_secret, credentials.organization_secret)
        url = api_url.rstrip("/") + path
        headers = {"Authorization": credentials.header()}
        started = time.monotonic()
        async with self._slots:
            failure: errors.TransportError | None = None
            try:
                response = await self._http.request(method, url, json=body, params=params, headers=headers)
            except httpx.TimeoutException as error:
                self._observe(method, "timeout", time.monotonic() - started)
                failure = errors.Timeout(f"{method} {path}: timed out ({type(error).__name__})")
            except (httpx.TransportError, httpx.InvalidURL) as error:
                self._observe(method, "network", time.monotonic() - started)
                failure = errors.NetworkError(
                    redact(f"{method} {path}: {type(error).__name__}: {error}", hidden)
                )
        # Raised outside the except block: httpx errors hold the request, whose headers hold the
        # account secrets, and `from None` would still keep them reachable as __context__.
        if failure is not None:
            raise failure
        elapsed = time.monotonic() - started
        self._observe(method, str(response.status_code), elapsed)
        request_id = response.headers.get("elements-request-id")
        # One line per call that changes something (reads only at DEBUG); the path has no secrets.
        logger.log(
            logging.DEBUG if method == "GET" else logging.INFO,
            "%s %s -> %d in %.0f ms (request id %s)",
            method, path, response.status_code, elapsed * 1000, request_id or "-",
        )  # fmt: skip
        if response.is_success:
            return _json(response), response.headers
        raise _api_error(response, request_id, hidden)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise errors.ServerError(response.status_code, "the platform answered with invalid JSON") from None


def _api_error(response: httpx.Response, request_id: str | None, hidden: tuple[str, ...]) -> errors.APIError:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    message = str(payload.get("message") or response.reason_phrase or "no message")
    provider = payload.get("providerMessage")
    if provider:
        message = f"{message} (provider: {provider})"
    request_id = request_id or payload.get("requestId")
    retry_after = _retry_after(response.headers.get("retry-after"))
    return errors.error_for(response.status_code, redact(message, hidden), request_id, retry_after)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here, and the caller's backoff is a safe fallback


def _values(body: Mapping[str, Any]) -> tuple[str, ...]:
    configuration = body.get("configuration") or {}
    return tuple(str(v) for v in configuration.values()) if isinstance(configuration, Mapping) else ()
