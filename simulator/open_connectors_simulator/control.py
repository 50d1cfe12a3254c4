"""Typed clients for the simulator's `/_sim` control API, used by tests and the benchmark.

Each control call is described once (`_Call`) and executed by either the blocking or the asyncio
client, so the two cannot drift apart. Errors surface as `httpx.HTTPStatusError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from open_connectors_simulator.settings import API_BASE_PATH, CONTROL_BASE_PATH

FaultKindName = Literal["fail", "rate_limit", "drop_before", "drop_after", "hang_after"]
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


def _rule(
    kind: FaultKindName,
    method: str,
    count: int,
    *,
    route: str | None = None,
    status: int = 503,
    retry_after: int = 1,
) -> _Call:
    body: dict[str, Any] = {"kind": kind, "method": method, "count": count, "status": status}
    body["retryAfter"] = retry_after
    if route is not None:
        body["route"] = route
    return _Call("POST", "/faults/rules", body)


def _error_rates(rates: dict[str, float], status: int | None, seed: int | None) -> _Call:
    body: dict[str, Any] = {"rates": rates}
    if status is not None:
        body["status"] = status
    if seed is not None:
        body["seed"] = seed
    return _Call("PUT", "/faults/error-rates", body)


class _Base:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @property
    def api_url(self) -> str:
        """The Open Connectors base URL clients should use (`.../elements/api-v2`)."""
        return f"{self.base_url}{API_BASE_PATH}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}{CONTROL_BASE_PATH}"


class SimulatorControl(_Base):
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

    def _do(self, call: _Call) -> Any:
        response = self._client.request(call.method, call.path, json=call.body)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._do(_Call("GET", "/health"))
        return result

    def reset(self) -> None:
        """Delete all instances, clear counters and restore the start-up fault settings."""
        self._do(_Call("POST", "/reset"))

    def counters(self) -> dict[str, int]:
        """Calls per `"<METHOD> <route template>"`, e.g. `{"POST /instances": 2}`."""
        counters: dict[str, int] = self._do(_Call("GET", "/counters"))["counters"]
        return counters

    def reset_counters(self) -> None:
        self._do(_Call("DELETE", "/counters"))

    def instances(self) -> list[dict[str, Any]]:
        """All instances, unmasked, including tokens and any providerData sent."""
        instances: list[dict[str, Any]] = self._do(_Call("GET", "/instances"))["instances"]
        return instances

    def instance(self, instance_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._do(_Call("GET", f"/instances/{instance_id}"))
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._do(_Call("GET", "/faults"))
        return result

    def clear_faults(self) -> None:
        self._do(_Call("DELETE", "/faults"))

    def set_latency(self, ms: int) -> None:
        self._do(_Call("PUT", "/faults/latency", {"ms": ms}))

    def set_error_rate(
        self, rates: dict[str, float], *, status: int | None = None, seed: int | None = None
    ) -> None:
        """E.g. `{"POST": 0.5}`: half the POSTs get `status` (503 unless changed)."""
        self._do(_error_rates(rates, status, seed))

    def fail_next(self, method: str, count: int = 1, status: int = 503, *, route: str | None = None) -> None:
        self._do(_rule("fail", method, count, route=route, status=status))

    def rate_limit_next(
        self, method: str, count: int = 1, retry_after: int = 1, *, route: str | None = None
    ) -> None:
        self._do(_rule("rate_limit", method, count, route=route, retry_after=retry_after))

    def drop_next(
        self, method: str, count: int = 1, *, after_handling: bool, route: str | None = None
    ) -> None:
        """Close the connection unanswered; with `after_handling` the call takes effect first."""
        self._do(_rule("drop_after" if after_handling else "drop_before", method, count, route=route))

    def hang_next(self, method: str, count: int = 1, *, route: str | None = None) -> None:
        """Let the call take effect, then hold the response back for minutes."""
        self._do(_rule("hang_after", method, count, route=route))

    def mark_invalid(self, instance_id: int, valid: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._do(_Call("PATCH", f"/instances/{instance_id}", {"valid": valid}))
        return result

    def mark_disabled(self, instance_id: int, disabled: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self._do(_Call("PATCH", f"/instances/{instance_id}", {"disabled": disabled}))
        return result

    def rotate_token(self, instance_id: int) -> str:
        """Issue a new token now; returns it. The old token stops working."""
        token: str = self._do(_Call("POST", f"/instances/{instance_id}/rotate-token"))["token"]
        return token

    def rotate_token_on_next_update(self, instance_id: int) -> None:
        self._do(_Call("PATCH", f"/instances/{instance_id}", {"rotateTokenOnNextUpdate": True}))

    def rotate_on_update(self, enabled: bool) -> None:
        """Switch the "every PUT/PATCH issues a new token" fault on or off."""
        self._do(_Call("PUT", "/faults/rotate-on-update", {"enabled": enabled}))


class AsyncSimulatorControl(_Base):
    """The same calls for asyncio code (the benchmark drives the API concurrently)."""

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

    async def _do(self, call: _Call) -> Any:
        response = await self._client.request(call.method, call.path, json=call.body)
        response.raise_for_status()
        return response.json()

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Call("GET", "/health"))
        return result

    async def reset(self) -> None:
        await self._do(_Call("POST", "/reset"))

    async def counters(self) -> dict[str, int]:
        counters: dict[str, int] = (await self._do(_Call("GET", "/counters")))["counters"]
        return counters

    async def reset_counters(self) -> None:
        await self._do(_Call("DELETE", "/counters"))

    async def instances(self) -> list[dict[str, Any]]:
        instances: list[dict[str, Any]] = (await self._do(_Call("GET", "/instances")))["instances"]
        return instances

    async def instance(self, instance_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Call("GET", f"/instances/{instance_id}"))
        return result

    async def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Call("GET", "/faults"))
        return result

    async def clear_faults(self) -> None:
        await self._do(_Call("DELETE", "/faults"))

    async def set_latency(self, ms: int) -> None:
        await self._do(_Call("PUT", "/faults/latency", {"ms": ms}))

    async def set_error_rate(
        self, rates: dict[str, float], *, status: int | None = None, seed: int | None = None
    ) -> None:
        await self._do(_error_rates(rates, status, seed))

    async def fail_next(
        self, method: str, count: int = 1, status: int = 503, *, route: str | None = None
    ) -> None:
        await self._do(_rule("fail", method, count, route=route, status=status))

    async def rate_limit_next(
        self, method: str, count: int = 1, retry_after: int = 1, *, route: str | None = None
    ) -> None:
        await self._do(_rule("rate_limit", method, count, route=route, retry_after=retry_after))

    async def drop_next(
        self, method: str, count: int = 1, *, after_handling: bool, route: str | None = None
    ) -> None:
        await self._do(_rule("drop_after" if after_handling else "drop_before", method, count, route=route))

    async def mark_invalid(self, instance_id: int, valid: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(_Call("PATCH", f"/instances/{instance_id}", {"valid": valid}))
        return result

    async def mark_disabled(self, instance_id: int, disabled: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = await self._do(
            _Call("PATCH", f"/instances/{instance_id}", {"disabled": disabled})
        )
        return result

    async def rotate_token(self, instance_id: int) -> str:
        token: str = (await self._do(_Call("POST", f"/instances/{instance_id}/rotate-token")))["token"]
        return token

    async def rotate_token_on_next_update(self, instance_id: int) -> None:
        await self._do(_Call("PATCH", f"/instances/{instance_id}", {"rotateTokenOnNextUpdate": True}))

    async def rotate_on_update(self, enabled: bool) -> None:
        await self._do(_Call("PUT", "/faults/rotate-on-update", {"enabled": enabled}))
