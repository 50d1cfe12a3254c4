"""Deliberate misbehaviour (latency, errors, 429s, dropped connections) and call accounting.

The operator's retry and idempotency logic can only be tested against a platform that fails on
demand. Tests need determinism, so besides random error rates there are counted rules ("the next N
POSTs fail with 503") that are consumed in order; the counters let tests and the benchmark see
exactly how many calls each route received, and the request log when each arrived and how it was
answered (a rate limit is measured from arrival times the platform saw, not from the caller's
own counting). A counted rule may also name a substring the request body must contain
(`contains`), so that it hits one tenant's calls only: e.g. `k8s-object:<namespace>/`, the tag the
operator puts on every instance of that namespace (a POST's body carries it), hangs that
namespace's creates and no one else's.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from open_connectors_simulator.httputil import ApiError


class FaultKind(StrEnum):
    FAIL = "fail"
    RATE_LIMIT = "rate_limit"
    # The connection is closed with no response. "before" never reaches the handler; "after"
    # lets the handler run (the instance exists) and then drops the answer.
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    # The call takes effect and the answer never comes: the client is left waiting, which is how
    # a test kills the operator "after the POST, before the status write" without hooks in it.
    HANG_AFTER = "hang_after"


ANY_METHOD = "*"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", ANY_METHOD)


@dataclass
class FaultRule:
    kind: FaultKind
    method: str
    remaining: int
    route: str | None = None
    status: int = 503
    retry_after: int = 1
    contains: str | None = None  # only calls whose body contains this (None: any call)

    def matches(self, method: str, route: str, body: bytes = b"") -> bool:
        return (
            self.remaining > 0
            and self.method in (ANY_METHOD, method)
            and (self.route is None or self.route == route)
            and (self.contains is None or self.contains.encode() in body)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "method": self.method,
            "remaining": self.remaining,
            "route": self.route,
            "status": self.status,
            "retryAfter": self.retry_after,
            "contains": self.contains,
        }


@dataclass(frozen=True)
class FaultAction:
    """What the middleware must do for one call."""

    kind: FaultKind
    status: int = 503
    retry_after: int = 1

    def error(self) -> ApiError:
        if self.kind is FaultKind.RATE_LIMIT:
            return ApiError(
                429,
                "Rate limit exceeded (simulated); retry later",
                headers={"Retry-After": str(self.retry_after)},
            )
        return ApiError(self.status, f"Simulated failure with status {self.status}")


def normalize_method(method: object) -> str:
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ApiError(400, f"method must be one of {', '.join(_METHODS)}")
    return method.upper()


class FaultState:
    def __init__(
        self,
        *,
        latency_ms: int = 0,
        error_rates: dict[str, float] | None = None,
        error_status: int = 503,
        rotate_on_update: bool = False,
        seed: int | None = None,
    ) -> None:
        self._initial = (latency_ms, dict(error_rates or {}), error_status, rotate_on_update)
        self._seed = seed
        self.latency_ms = latency_ms
        self.error_rates: dict[str, float] = dict(error_rates or {})
        self.error_status = error_status
        self.rotate_on_update = rotate_on_update
        self.rules: list[FaultRule] = []
        self.random = random.Random(seed)

    def reset(self) -> None:
        """Back to the start-up configuration (CLI flags), with no pending rules."""
        self.latency_ms, rates, self.error_status, self.rotate_on_update = self._initial
        self.error_rates = dict(rates)
        self.rules.clear()
        self.random = random.Random(self._seed)

    def add_rule(self, rule: FaultRule) -> None:
        if rule.remaining > 0:
            self.rules.append(rule)

    def set_error_rates(self, rates: dict[str, float], status: int | None, seed: int | None) -> None:
        self.error_rates = dict(rates)
        if status is not None:
            self.error_status = status
        if seed is not None:
            self.random = random.Random(seed)

    def decide(self, method: str, route: str, body: bytes = b"") -> FaultAction | None:
        """Consume the first matching counted rule, else roll the per-method error rate. `body`:
        the request's, as received (empty if none, or too large to be read)."""
        for rule in self.rules:
            if rule.matches(method, route, body):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.rules.remove(rule)
                return FaultAction(rule.kind, rule.status, rule.retry_after)
        rate = self.error_rates.get(method, self.error_rates.get(ANY_METHOD, 0.0))
        if rate > 0 and self.random.random() < rate:
            return FaultAction(FaultKind.FAIL, self.error_status)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "latencyMs": self.latency_ms,
            "errorRates": dict(self.error_rates),
            "errorStatus": self.error_status,
            "rotateTokenOnUpdate": self.rotate_on_update,
            "rules": [rule.to_json() for rule in self.rules],
        }


@dataclass
class LoggedRequest:
    """One API call as the simulator saw it."""

    at: float  # arrival, in seconds since the epoch, before any latency or fault is applied
    method: str
    route: str
    status: int | None = None  # None: not answered (yet), or the connection was dropped
    path: str = ""  # as requested (base path and instance ID): which instance a call was on

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "status": self.status,
        }


# Enough for any test or benchmark run; a long-running simulator keeps the most recent ones.
REQUEST_LOG_LIMIT = 100_000


class CallCounters:
    """API calls per `"<METHOD> <route template>"`, e.g. `"GET /instances/{id}"`, and the log of
    the most recent ones in arrival order."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._log: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_LIMIT)

    def record(self, method: str, route: str, path: str = "") -> LoggedRequest:
        """Count a call as it arrives; the caller sets the returned entry's status when answered."""
        self._counts[f"{method} {route}"] += 1
        entry = LoggedRequest(time.time(), method, route, path=path)
        self._log.append(entry)
        return entry

    def log(self) -> list[dict[str, Any]]:
        return [entry.to_json() for entry in self._log]

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def total(self) -> int:
        return sum(self._counts.values())

    def reset(self) -> None:
        self._counts.clear()
        self._log.clear()
