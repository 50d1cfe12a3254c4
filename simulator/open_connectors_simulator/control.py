"""Typed clients for the simulator's `/_sim` control API, used by tests, the demo and the benchmark.

Every control operation is written once, in `ControlOperations`, as a method that returns a
request description (`Call`: method, path, JSON body, and how to read the answer). It never does
I/O. The two clients are thin transports over that one table: `SimulatorControl` executes a
`Call` with a blocking httpx client, `AsyncSimulatorControl` with an asyncio one. The `operation`
descriptor makes each method of the table a method of both clients, so the two expose the same
operations with the same signatures by construction: an operation added to the table exists in
both, and none can be added to only one (tests/simulator/test_control_clients.py checks it).
Errors surface as `httpx.HTTPStatusError`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar, overload

import httpx

from open_connectors_simulator.settings import API_BASE_PATH, CONTROL_BASE_PATH

FaultKindName = Literal["fail", "rate_limit", "drop_before", "drop_after", "hang_after"]
DEFAULT_TIMEOUT_SECONDS = 10.0

P = ParamSpec("P")
T = TypeVar("T")


def _nothing(_: Any) -> None:
    return None


def _as_is(body: Any) -> Any:
    return body


@dataclass(frozen=True)
class Call(Generic[T]):
    """One control request, described: what to send and how to read the JSON answer."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    read: Callable[[Any], T] = _as_is


class Operation(Generic[P, T]):
    """A `Call`-building method of `ControlOperations`, served as a method of each client.

    On a `SimulatorControl` the bound method returns the result; on an `AsyncSimulatorControl` it
    returns an awaitable of it. Both carry the building method's name, docstring and signature.
    """

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        parameters = list(inspect.signature(build).parameters.values())[1:]  # without `self`
        self.signature = inspect.signature(build).replace(parameters=parameters)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, instance: SimulatorControl, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, instance: AsyncSimulatorControl, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, instance: object, owner: type[Any]) -> Any:
        if instance is None:
            return self
        if not isinstance(instance, _Transport):
            raise TypeError(f"{self.build.__name__} needs a SimulatorControl or an AsyncSimulatorControl")
        bound = instance.bind(self.build)
        functools.update_wrapper(bound, self.build)
        del bound.__wrapped__  # type: ignore[attr-defined]  # the signature is the one below
        bound.__signature__ = self.signature  # type: ignore[attr-defined]
        return bound


def operation(build: Callable[Concatenate[Any, P], Call[T]]) -> Operation[P, T]:
    """Decorator for the methods of `ControlOperations`."""
    return Operation(build)


def _rule(
    kind: FaultKindName,
    method: str,
    count: int,
    *,
    route: str | None = None,
    status: int = 503,
    retry_after: int = 1,
    contains: str | None = None,
) -> Call[None]:
    body: dict[str, Any] = {"kind": kind, "method": method, "count": count, "status": status}
    body["retryAfter"] = retry_after
    if route is not None:
        body["route"] = route
    if contains is not None:
        body["contains"] = contains
    return Call("POST", "/faults/rules", body, _nothing)


class ControlOperations:
    """The `/_sim` API, one method per operation; each returns the `Call` that performs it."""

    @operation
    def health(self) -> Call[dict[str, Any]]:
        return Call("GET", "/health")

    @operation
    def reset(self) -> Call[None]:
        """Delete all instances, clear counters and restore the start-up fault settings."""
        return Call("POST", "/reset", read=_nothing)

    @operation
    def counters(self) -> Call[dict[str, int]]:
        """Calls per `"<METHOD> <route template>"`, e.g. `{"POST /instances": 2}`."""
        return Call("GET", "/counters", read=lambda body: body["counters"])

    @operation
    def reset_counters(self) -> Call[None]:
        """Clear the counters and the request log."""
        return Call("DELETE", "/counters", read=_nothing)

    @operation
    def requests(self) -> Call[list[dict[str, Any]]]:
        """The API calls in arrival order (the most recent 100,000), each `{"at": seconds since
        the epoch when it arrived, "method", "route" (template), "path" (as requested: base path
        and instance ID), "status" (None: no answer)}`."""
        return Call("GET", "/requests", read=lambda body: body["requests"])

    @operation
    def instances(self) -> Call[list[dict[str, Any]]]:
        """All instances, unmasked, including tokens and any providerData sent."""
        return Call("GET", "/instances", read=lambda body: body["instances"])

    @operation
    def instance(self, instance_id: int) -> Call[dict[str, Any]]:
        return Call("GET", f"/instances/{instance_id}")

    @operation
    def faults(self) -> Call[dict[str, Any]]:
        return Call("GET", "/faults")

    @operation
    def clear_faults(self) -> Call[None]:
        return Call("DELETE", "/faults", read=_nothing)

    @operation
    def set_latency(self, ms: int) -> Call[None]:
        return Call("PUT", "/faults/latency", {"ms": ms}, _nothing)

    @operation
    def set_error_rate(
        self, rates: dict[str, float], *, status: int | None = None, seed: int | None = None
    ) -> Call[None]:
        """E.g. `{"POST": 0.5}`: half the POSTs get `status` (503 unless changed)."""
        body: dict[str, Any] = {"rates": rates}
        if status is not None:
            body["status"] = status
        if seed is not None:
            body["seed"] = seed
        return Call("PUT", "/faults/error-rates", body, _nothing)

    @operation
    def fail_next(
        self, method: str, count: int = 1, status: int = 503, *, route: str | None = None
    ) -> Call[None]:
        return _rule("fail", method, count, route=route, status=status)

    @operation
    def rate_limit_next(
        self, method: str, count: int = 1, retry_after: int = 1, *, route: str | None = None
    ) -> Call[None]:
        return _rule("rate_limit", method, count, route=route, retry_after=retry_after)

    @operation
    def drop_next(
        self, method: str, count: int = 1, *, after_handling: bool, route: str | None = None
    ) -> Call[None]:
        """Close the connection unanswered; with `after_handling` the call takes effect first."""
        return _rule("drop_after" if after_handling else "drop_before", method, count, route=route)

    @operation
    def hang_next(
        self, method: str, count: int = 1, *, route: str | None = None, contains: str | None = None
    ) -> Call[None]:
        """Let the call take effect, then hold the response back for minutes. With `contains`, only
        calls whose body contains it count and hang (e.g. one namespace's `k8s-object:<ns>/` tag)."""
        return _rule("hang_after", method, count, route=route, contains=contains)

    @operation
    def mark_invalid(self, instance_id: int, valid: bool = False) -> Call[dict[str, Any]]:
        return Call("PATCH", f"/instances/{instance_id}", {"valid": valid})

    @operation
    def mark_disabled(self, instance_id: int, disabled: bool = True) -> Call[dict[str, Any]]:
        return Call("PATCH", f"/instances/{instance_id}", {"disabled": disabled})

    @operation
    def rotate_token(self, instance_id: int) -> Call[str]:
        """Issue a new token now; returns it. The old token stops working."""
        return Call("POST", f"/instances/{instance_id}/rotate-token", read=lambda body: body["token"])

    @operation
    def rotate_token_on_next_update(self, instance_id: int) -> Call[None]:
        return Call("PATCH", f"/instances/{instance_id}", {"rotateTokenOnNextUpdate": True}, _nothing)

    @operation
    def revoke_refresh_token(self, instance_id: int) -> Call[dict[str, Any]]:
        """The fake OAuth provider revokes the refresh token this OAuth instance holds: its next
        refresh (its next read, or `refresh_instance`) fails, `valid: false`; the fifth failed one
        disables it. Returns the raw instance."""
        return Call("POST", f"/instances/{instance_id}/revoke-refresh-token")

    @operation
    def refresh_instance(self, instance_id: int) -> Call[dict[str, Any]]:
        """One OAuth refresh attempt now (the platform's own schedule); returns the raw instance."""
        return Call("POST", f"/instances/{instance_id}/refresh")

    @operation
    def set_oauth_code_ttl(self, seconds: float) -> Call[None]:
        """How long a new code of the fake OAuth provider stays valid; `reset` restores the
        start-up value (`--oauth-code-ttl`)."""
        return Call("PUT", "/oauth/code-ttl", {"seconds": seconds}, _nothing)

    @operation
    def rotate_on_update(self, enabled: bool) -> Call[None]:
        """Switch the "every PUT/PATCH issues a new token" fault on or off."""
        return Call("PUT", "/faults/rotate-on-update", {"enabled": enabled}, _nothing)


class _Transport(ControlOperations):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @property
    def api_url(self) -> str:
        """The Open Connectors base URL clients should use (`.../elements/api-v2`)."""
        return f"{self.base_url}{API_BASE_PATH}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}{CONTROL_BASE_PATH}"

    def bind(self, build: Callable[..., Call[Any]]) -> Callable[..., Any]:
        """A callable that builds the `Call` from its arguments and executes it."""
        raise NotImplementedError


class SimulatorControl(_Transport):
    """Blocking control client: `SimulatorControl("http://127.0.0.1:8089")`."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(base_url)
        self._client = httpx.Client(base_url=self.control_url, timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def execute(self, call: Call[T]) -> T:
        response = self._client.request(call.method, call.path, json=call.body)
        response.raise_for_status()
        return call.read(response.json())

    def bind(self, build: Callable[..., Call[Any]]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            return self.execute(build(self, *args, **kwargs))

        return run


class AsyncSimulatorControl(_Transport):
    """The same operations for asyncio code (the benchmark drives the API concurrently)."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(base_url)
        self._client = httpx.AsyncClient(base_url=self.control_url, timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def execute(self, call: Call[T]) -> T:
        response = await self._client.request(call.method, call.path, json=call.body)
        response.raise_for_status()
        return call.read(response.json())

    def bind(self, build: Callable[..., Call[Any]]) -> Callable[..., Any]:
        async def run(*args: Any, **kwargs: Any) -> Any:
            return await self.execute(build(self, *args, **kwargs))

        return run
