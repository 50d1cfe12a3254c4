"""`AccountGate`: what every platform call made for an account passes before it is sent, its
request budget (a rate with a burst, and calls in flight) and its circuit breaker; `Gates`, one
gate per account.

A call for an account goes: circuit (refused at once while open: `errors.CircuitOpen`), then a
slot of the account's `maxInFlight`, then the client's per-host and global slots (`slots.py`),
then the account's token (`Admission.paced`), then the wire. Its outcome goes back to the circuit.
The order is deliberate:

- the circuit first, so that a failing platform costs no budget and no waiting;
- `maxInFlight` before the client's slots, so that at most `maxInFlight` of the account's calls
  hold or wait for those;
- the token last, right before the call goes: a token taken early and spent late (after a wait
  for a host slot behind slow calls) let delayed calls arrive together, above the rate the
  budget promises the platform. A call waiting for its token holds a host slot meanwhile, but
  only its namespace's share of it (`fair.py`), and the token comes within the expected wait the
  gate checked on arrival or the call is refused.

**Shared fairly.** A ClusterConnectorAccount is shared by many teams, and its budget was first
come, first served (tenant-findings N5, N6): one team's queued calls took every token, and four of
its hanging calls were the whole `maxInFlight: 4`. The `maxInFlight` slots are a `fair.FairSlots`
keyed by the caller's namespace: namespaces with waiting calls get slots in turn, one namespace
holds at most all but a quarter of them (3 of 4), and since only slot holders wait for tokens,
the tokens go round in about the same turns. The expected wait that refuses a call early
(`BudgetExhausted`) is the caller's place in that round, not behind everyone's queue.

The token bucket is aiolimiter's `AsyncLimiter` (a leaky bucket, which is the same thing seen from
the other side): capacity `burst`, refilled at `requestsPerSecond`, FIFO among waiters, and a
cancelled waiter takes no token. aiolimiter fits: `max_rate=burst, time_period=burst/rps` is a
bucket of `burst` tokens refilled at `rps`, and acquiring `burst` on a fresh limiter (public API,
no wait) makes it start empty.

**Honoured across restarts of the pace.** The budget promises that in any window of t seconds at
most `burst + requestsPerSecond * t` calls reach the platform for the account. A bucket that starts
full would break that at every restart (a restart every few seconds would send a full burst each
time). A bucket that starts empty keeps it without persisting anything: the process that died
sent at most `burst + rps * t1` calls in its part of the window, the new one at most `rps * t2` in
its part (it starts with no tokens), so the window holds at most `burst + rps * (t1 + t2)`. The
same holds when the budget changes: the new bucket starts empty too. (It assumes one operator
process at a time, which the deployment already requires: kopf has no leader election.)

**Waiting is bounded.** Waiting for the budget does not count towards a call's deadline (that is
for the platform's answer), but it cannot be endless either: a call that would wait longer than
`max_wait` fails at once with `errors.BudgetExhausted` (retryable, with the expected wait as
`retry_after`) instead of queueing, and one that waits that long anyway (in-flight calls slower
than expected) fails the same way.

**Recovery.** When a call succeeds after failures (the circuit closes, or a closed circuit's
failure count clears), the gate calls its `on_recovery` callbacks, so that objects waiting in
backoff for the account can retry now instead of waiting out their own delay. A fresh gate has
nothing to recover from: waking every object of every account at start-up would undo the spread of
their first checks (reconciler/instance.py), and deletions that a previous process left waiting
are run once at first sight anyway (engine/deleteretry.py).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from aiolimiter import AsyncLimiter

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.circuit import Circuit, CircuitState
from connector_operator.openconnectors.fair import OPERATOR, FairSlots

__all__ = ["AccountGate", "Admission", "Budget", "BudgetSpec", "GateSnapshot", "Gates", "succeeded"]

logger = logging.getLogger(__name__)

Recovery = Callable[[], None]


def succeeded(status: int) -> bool:
    """Whether an answer shows the platform working for this account: 2xx/3xx, or 404 (the normal
    answer to an empty search or to deleting what is gone). Any answer below 500 keeps the circuit
    closed, but a 401 or a 429 is no reason to wake everyone waiting."""
    return status < 400 or status == 404


class BudgetSpec(Protocol):
    """What an account's `spec.requestBudget` provides (api/account.py's model has these)."""

    @property
    def requests_per_second(self) -> float: ...

    @property
    def burst(self) -> int: ...

    @property
    def max_in_flight(self) -> int: ...


@dataclass(frozen=True)
class Budget:
    requests_per_second: float
    burst: int
    max_in_flight: int

    def __post_init__(self) -> None:
        if not self.requests_per_second > 0 or self.burst < 1 or self.max_in_flight < 1:
            raise ValueError("a request budget needs requestsPerSecond > 0, burst >= 1 and maxInFlight >= 1")

    @classmethod
    def of(cls, spec: BudgetSpec) -> Budget:
        return cls(float(spec.requests_per_second), int(spec.burst), int(spec.max_in_flight))


@dataclass(frozen=True)
class GateSnapshot:
    """The gate's state for the account's status (`status.budget`, `status.circuit`)."""

    budget: Budget | None
    available: float  # tokens in the bucket now
    in_flight: int  # calls admitted and not finished
    circuit: CircuitState
    consecutive_failures: int
    opened_at: str | None  # RFC 3339, when the circuit last opened; None while closed

    def status(self) -> dict[str, Any]:
        """As the account status writes it (camelCase); `budget` is absent without a budget."""
        result: dict[str, Any] = {
            "circuit": {"state": self.circuit.value, "consecutiveFailures": self.consecutive_failures}
        }
        if self.opened_at is not None:
            result["circuit"]["openedAt"] = self.opened_at
        if self.budget is not None:
            result["budget"] = {
                "requestsPerSecond": self.budget.requests_per_second,
                "burst": self.budget.burst,
                "maxInFlight": self.budget.max_in_flight,
                "available": round(self.available, 2),
                "inFlight": self.in_flight,
            }
        return result


class Admission:
    """One call let through the gate: the client reports its outcome with `record`, once.

    A call that carries a tenant's configuration (`tenant_input`: a POST or a PUT, which the
    platform may hand to the vendor to validate) cannot fail the account: its 5xx or timeout is
    the object's (its condition, its backoff), not a sign of the platform (circuit.py)."""

    def __init__(
        self,
        gate: AccountGate | None,
        probe: bool = False,
        *,
        source: str = OPERATOR,
        tenant_input: bool = False,
    ) -> None:
        self._gate = gate
        self.probe = probe  # this call is the half-open circuit's probe
        self.source, self.tenant_input = source, tenant_input
        self.recorded = False
        self.pace: Callable[[float], Awaitable[None]] | None = None  # the budget's token, if any

    async def paced(self, max_wait: float) -> None:
        """Wait for the call's token (a budget), right before it is sent: `BudgetExhausted` if it
        does not come within `max_wait`."""
        if self.pace is not None:
            await self.pace(max_wait)

    def record(self, status: int | None) -> None:
        """The HTTP status the platform answered with; None for no answer (timeout, network)."""
        if self._gate is None or self.recorded:
            return
        if self.tenant_input and (status is None or status >= 500):
            return  # not judged; the gate releases the probe if it was one
        self.recorded = True
        self._gate._record(status, self.source)


class _Bucket:
    """aiolimiter's bucket, started empty (see the module docstring), and its in-flight bound."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.limiter = AsyncLimiter(budget.burst, budget.burst / budget.requests_per_second)
        self.slots = FairSlots(budget.max_in_flight)
        self.started = False
        self.queued: Counter[str] = Counter()  # callers waiting for a slot or a token, per namespace

    async def start(self) -> None:
        """Empty the bucket; on first use, since aiolimiter needs the running loop."""
        if not self.started:
            self.started = True
            await self.limiter.acquire(self.budget.burst)  # a fresh limiter: returns at once

    def available(self) -> float:
        if not self.started:
            return 0.0
        self.limiter.has_capacity(0)  # drains the bucket's level up to now
        # aiolimiter has no public accessor for its level; its type and meaning are pinned by
        # tests/unit/test_budget.py, and only the status reads it.
        return max(0.0, self.budget.burst - float(self.limiter._level))

    def expected_wait(self, key: str) -> float:
        """Seconds until a caller of `key` arriving now would get its token: the namespaces take
        turns for the slots, so ahead of it are its own queue and, of every other namespace's, as
        many, plus the ones already holding a slot (up to the share), which wait for their tokens
        first. (Counting one per namespace, a light namespace's call was let queue, then refused
        after its whole wait.)"""
        mine = self.queued[key] + 1
        holding = self.slots.share - 1
        ahead = mine + sum(min(n, mine + holding) for k, n in self.queued.items() if k != key)
        return max(0.0, (ahead - self.available()) / self.budget.requests_per_second)


class AccountGate:
    def __init__(
        self,
        name: str,
        budget: Budget | None,
        circuit: Circuit | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`name` says which account in messages; `clock` drives the circuit, `wall` dates it."""
        self.name = name
        self.circuit = circuit or Circuit()
        self._clock, self._wall = clock, wall
        self._bucket = _Bucket(budget) if budget is not None else None
        self._in_flight = 0
        self.waited = 0.0  # seconds calls spent waiting for a slot or a token, for the metrics
        self._callbacks: list[Recovery] = []
        self._recovering = False  # a failure since the last recovery; see "Recovery" above

    @property
    def budget(self) -> Budget | None:
        return self._bucket.budget if self._bucket is not None else None

    def reconfigure(self, budget: Budget | None) -> None:
        """A changed budget: a new bucket, started empty (which keeps the rate across the change).
        Calls admitted under the old one finish under it; the circuit and callbacks stay."""
        if budget != self.budget:
            self._bucket = _Bucket(budget) if budget is not None else None

    def on_recovery(self, callback: Recovery) -> Callable[[], None]:
        """Call `callback()` whenever the account recovers; returns a function that unregisters it.
        Called synchronously from the call that succeeded: it must return quickly."""
        self._callbacks.append(callback)

        def unregister() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unregister

    @asynccontextmanager
    async def admit(
        self, max_wait: float, *, namespace: str | None = None, tenant_input: bool = False
    ) -> AsyncIterator[Admission]:
        """Let one call through, or raise `CircuitOpen` / `BudgetExhausted` without sending it.
        `namespace`: the object's the call is made for (None: the operator's own call, such as the
        account's check); `tenant_input`: the request carries its configuration (see `Admission`)."""
        key = OPERATOR if namespace is None else namespace
        bucket = self._bucket
        if bucket is None:
            admission = Admission(self, self._pass_circuit(), source=key, tenant_input=tenant_input)
        else:
            self._refuse_while_open()  # no budget spent, no waiting, for a circuit that is open
            admission = Admission(self, source=key, tenant_input=tenant_input)
        try:
            if bucket is None:
                yield admission
                return
            async with self._budgeted(bucket, key, max_wait):
                admission.pace = functools.partial(self._token, bucket, key, admission)
                self._in_flight += 1
                try:
                    yield admission
                finally:
                    self._in_flight -= 1
        finally:
            if admission.probe and not admission.recorded:
                self.circuit.release()  # nothing to judge: the next call may probe

    @asynccontextmanager
    async def _budgeted(self, bucket: _Bucket, key: str, max_wait: float) -> AsyncIterator[None]:
        """A `maxInFlight` slot in `key`'s turn within `max_wait`, held for the body."""
        await bucket.start()
        wait = bucket.expected_wait(key)
        if wait > max_wait:
            raise self._exhausted(bucket, wait, max_wait)
        async with self._queued(bucket, key):
            try:
                await bucket.slots.acquire(key, max_wait)
            except TimeoutError:
                raise self._exhausted(bucket, bucket.expected_wait(key), max_wait) from None
        try:
            yield
        finally:
            bucket.slots.release(key)

    async def _token(self, bucket: _Bucket, key: str, admission: Admission, max_wait: float) -> None:
        """The call's token, taken right before it is sent (`Admission.paced`), within `max_wait`;
        then the circuit, once more: it may have opened while the call waited, and the half-open
        probe is chosen only now (chosen on arrival, a call waiting in its namespace's turn held
        it, and every other tenant was refused for its 15 s expiry)."""
        async with self._queued(bucket, key):
            try:
                async with asyncio.timeout(max_wait):
                    await bucket.limiter.acquire()
            except TimeoutError:
                raise self._exhausted(bucket, bucket.expected_wait(key), max_wait) from None
        admission.probe = self._pass_circuit()

    @asynccontextmanager
    async def _queued(self, bucket: _Bucket, key: str) -> AsyncIterator[None]:
        """A wait for the budget (a slot or a token): counted per namespace and timed."""
        bucket.queued[key] += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.waited += time.monotonic() - started
            bucket.queued[key] -= 1
            if bucket.queued[key] <= 0:
                del bucket.queued[key]

    def snapshot(self) -> GateSnapshot:
        bucket = self._bucket
        opened_at = self.circuit.opened_at
        return GateSnapshot(
            budget=self.budget,
            available=bucket.available() if bucket is not None else 0.0,
            in_flight=self._in_flight,
            circuit=self.circuit.state,
            consecutive_failures=self.circuit.consecutive_failures,
            opened_at=None if opened_at is None else _rfc3339(self._wall() - (self._clock() - opened_at)),
        )

    def _refuse_while_open(self) -> None:
        """`CircuitOpen` while the circuit cools down or its probe is out; nothing is claimed."""
        now = self._clock()
        if self.circuit.retry_after(now) > 0:
            raise self._open_error(now)

    def _pass_circuit(self) -> bool:
        """Raise `CircuitOpen` unless the circuit lets a call go; True when it goes as the probe."""
        now = self._clock()
        if not self.circuit.allow(now):
            raise self._open_error(now)
        return self.circuit.state is CircuitState.HALF_OPEN

    def _open_error(self, now: float) -> errors.CircuitOpen:
        return errors.CircuitOpen(
            f"{self.name}: the platform failed repeatedly (5xx, timeouts or network errors) and "
            "the account's circuit breaker is open; no request was sent",
            retry_after=self.circuit.retry_after(now),
        )

    def _exhausted(self, bucket: _Bucket, wait: float, max_wait: float) -> errors.BudgetExhausted:
        budget = bucket.budget
        return errors.BudgetExhausted(
            f"{self.name}: the request budget ({budget.requests_per_second:g}/s, burst {budget.burst}, "
            f"{budget.max_in_flight} in flight) has no room within {max_wait:g}s; no request was sent",
            retry_after=wait,
        )

    def _record(self, status: int | None, source: str = OPERATOR) -> None:
        answered = status is not None and status < 500
        self.circuit.record(answered, self._clock(), source)
        if not answered:
            self._recovering = True
        elif self._recovering and status is not None and succeeded(status):
            # Not on a 429 or a 401 even though the circuit closed: waking everyone into a rate
            # limit helps nobody. The next real success wakes them.
            self._recovering = False
            for callback in list(self._callbacks):
                try:
                    callback()
                except Exception:  # one broken callback must not fail the call or skip the others
                    logger.exception("%s: a recovery callback failed", self.name)


class Gates:
    """One `AccountGate` per account, kept for the operator's lifetime (or until `forget`)."""

    def __init__(
        self, *, circuit: Callable[[], Circuit] = Circuit, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._gates: dict[Hashable, AccountGate] = {}
        self._circuit, self._clock = circuit, clock
        self._callbacks: list[Callable[[Hashable], None]] = []

    def for_account(
        self,
        key: Hashable,
        budget: BudgetSpec | Budget | None,
        name: str = "",
        *,
        single_tenant: bool = False,
    ) -> AccountGate:
        """The account's gate; its bucket is rebuilt (empty) when the budget changed.
        `single_tenant`: every call is one namespace's, whose failures alone may open the circuit."""
        wanted = budget if budget is None or isinstance(budget, Budget) else Budget.of(budget)
        gate = self._gates.get(key)
        if gate is None:
            circuit = self._circuit()
            if single_tenant:
                circuit.min_sources = 1
            gate = self._gates[key] = AccountGate(name or _describe(key), wanted, circuit, clock=self._clock)
            gate.on_recovery(lambda: self._recovered(key))
        else:
            gate.reconfigure(wanted)
        return gate

    def get(self, key: Hashable) -> AccountGate | None:
        return self._gates.get(key)

    def waits(self) -> Iterator[tuple[Hashable, float]]:
        """Each account's seconds of waiting for its budget so far."""
        for key, gate in list(self._gates.items()):
            yield key, gate.waited

    def forget(self, key: Hashable) -> None:
        self._gates.pop(key, None)

    def on_recovery(self, callback: Callable[[Hashable], None]) -> None:
        """Call `callback(key)` whenever any account recovers (every gate, present and future)."""
        self._callbacks.append(callback)

    def _recovered(self, key: Hashable) -> None:
        for callback in list(self._callbacks):
            callback(key)


def _describe(key: Hashable) -> str:
    """("ClusterConnectorAccount", "", "shared") -> "ClusterConnectorAccount shared"."""
    if isinstance(key, tuple) and len(key) == 3 and all(isinstance(part, str) for part in key):
        kind, namespace, name = key
        return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    return f"account {key}"


def _rfc3339(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
