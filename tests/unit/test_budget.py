"""`openconnectors.budget`: the account gate (circuit, token bucket started empty, calls in flight,
bounded waiting, recovery callbacks), its snapshot for the account status, and the `Gates`
registry; the client's use of a gate over `httpx.MockTransport` (every page of a search, what
counts as a failure, nothing sent while the circuit is open, the success listener).

The bucket runs on the event loop's clock (aiolimiter's), so its tests measure elapsed loop time
and poll with deadlines; the circuit runs on a clock the test moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate, Budget, Gates, succeeded
from connector_operator.openconnectors.circuit import Circuit, CircuitState
from connector_operator.openconnectors.client import Credentials, InstancesClient, host_of

API = "https://platform.test/elements/api-v2"
CREDENTIALS = Credentials("user", "organization")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 (the state polled has no event to wait on)
            await asyncio.sleep(0.005)


def gate_with_circuit(
    threshold: int = 2, cooldown: float = 10.0, budget: Budget | None = None
) -> AccountGate:
    return AccountGate("ConnectorAccount team/acme", budget, Circuit(threshold, cooldown), clock=Clock())


def clock_of(gate: AccountGate) -> Clock:
    clock = gate._clock
    assert isinstance(clock, Clock)
    return clock


async def call(gate: AccountGate, status: int | None, max_wait: float = 5.0) -> None:
    async with gate.admit(max_wait) as admission:
        await admission.paced(max_wait)
        admission.record(status)


# --- the bucket ---------------------------------------------------------------------------------


async def test_the_bucket_starts_empty_and_refills_at_the_rate() -> None:
    gate = AccountGate("a", Budget(requests_per_second=20, burst=5, max_in_flight=5))
    assert gate.snapshot().available == 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await call(gate, 200)
    # Three tokens at 20/s from an empty bucket: no burst, about 150 ms.
    assert loop.time() - started >= 3 / 20 - 0.01
    assert gate.snapshot().available < 1
    # The bucket refills up to the burst and no further (this also pins aiolimiter's `_level`).
    await eventually(lambda: gate.snapshot().available >= 5 - 1e-6, timeout=2)
    assert gate.snapshot().available <= 5
    started = loop.time()
    for _ in range(5):
        await call(gate, 200)
    assert loop.time() - started < 0.1  # a full bucket lets the burst through at once


async def test_a_call_that_would_wait_too_long_fails_at_once_with_the_expected_wait() -> None:
    gate = AccountGate("ConnectorAccount team/acme", Budget(requests_per_second=1, burst=1, max_in_flight=5))
    release = asyncio.Event()

    async def first() -> None:
        async with gate.admit(1.5) as admission:
            await admission.paced(1.5)
            await release.wait()

    waiting = asyncio.ensure_future(first())  # needs the first token, about 1 s away
    await eventually(lambda: gate._bucket is not None and sum(gate._bucket.queued.values()) == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.BudgetExhausted) as caught:
        await call(gate, 200, max_wait=1.5)  # second in line: about 2 s
    assert loop.time() - started < 0.1
    assert caught.value.retry_after == pytest.approx(2.0, abs=0.1)
    assert "ConnectorAccount team/acme" in str(caught.value)
    assert "1/s, burst 1, 5 in flight" in str(caught.value)
    release.set()
    await waiting


async def test_a_wait_longer_than_the_bound_ends_in_budget_exhausted() -> None:
    # The in-flight slot is taken and not given back in time: the wait is cut at max_wait.
    gate = AccountGate("a", Budget(requests_per_second=100, burst=1, max_in_flight=1))
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.admit(5) as admission:
            await admission.paced(5)
            await release.wait()

    holding = asyncio.ensure_future(holder())
    await eventually(lambda: gate.snapshot().in_flight == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(errors.BudgetExhausted):
        await call(gate, 200, max_wait=0.2)
    assert 0.15 <= loop.time() - started < 1
    release.set()
    await holding
    await call(gate, 200)  # the timed-out waiter left nothing behind
    assert gate._bucket is not None
    assert not gate._bucket.queued


async def test_no_more_than_max_in_flight_calls_are_admitted() -> None:
    gate = AccountGate("a", Budget(requests_per_second=1000, burst=1000, max_in_flight=2))
    release = asyncio.Event()
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with gate.admit(5) as admission:
            await admission.paced(5)
            peak = max(peak, gate.snapshot().in_flight)
            await release.wait()
            admission.record(200)

    tasks = [asyncio.ensure_future(one()) for _ in range(5)]
    await eventually(lambda: gate.snapshot().in_flight == 2)
    assert gate._bucket is not None
    await eventually(lambda: gate._bucket is not None and sum(gate._bucket.queued.values()) == 3)
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2
    assert gate.snapshot().in_flight == 0


# --- the circuit through the gate ---------------------------------------------------------------


async def test_failures_open_the_circuit_and_nothing_is_admitted_until_the_cooldown() -> None:
    gate = gate_with_circuit(threshold=2, cooldown=10.0)
    await call(gate, 503)
    await call(gate, None)  # a timeout or network error
    with pytest.raises(errors.CircuitOpen) as caught:
        await call(gate, 200)
    assert caught.value.retry_after == pytest.approx(10.0)
    clock_of(gate).now += 4
    with pytest.raises(errors.CircuitOpen) as caught:
        await call(gate, 200)
    assert caught.value.retry_after == pytest.approx(6.0)


@pytest.mark.parametrize("status", [400, 401, 404, 409, 429])
async def test_an_answer_below_500_is_the_platform_answering(status: int) -> None:
    gate = gate_with_circuit(threshold=2)
    await call(gate, 503)
    await call(gate, status)
    await call(gate, 503)
    assert gate.circuit.state is CircuitState.CLOSED  # the count started again


async def test_after_the_cooldown_one_probe_goes_and_its_success_closes_the_circuit() -> None:
    gate = gate_with_circuit(threshold=1, cooldown=10.0)
    await call(gate, 503)
    clock_of(gate).now += 10
    async with gate.admit(5) as probe:
        assert probe.probe
        with pytest.raises(errors.CircuitOpen):
            await call(gate, 200)  # the others wait for the probe
        probe.record(200)
    assert gate.circuit.state is CircuitState.CLOSED
    await call(gate, 200)


async def test_a_probe_that_ends_without_an_answer_lets_the_next_call_probe() -> None:
    gate = gate_with_circuit(threshold=1, cooldown=10.0)
    await call(gate, 503)
    clock_of(gate).now += 10
    with pytest.raises(RuntimeError):
        async with gate.admit(5):
            raise RuntimeError("cancelled, say")
    async with gate.admit(5) as probe:
        assert probe.probe
        probe.record(200)


async def test_a_call_that_waited_for_its_token_is_not_sent_into_an_opened_circuit() -> None:
    gate = gate_with_circuit(threshold=1, budget=Budget(requests_per_second=10, burst=1, max_in_flight=1))
    waiting = asyncio.ensure_future(call(gate, 200))  # the first token is 100 ms away
    await eventually(lambda: gate._bucket is not None and sum(gate._bucket.queued.values()) == 1)
    gate.circuit.record(False, clock_of(gate).now)  # another call's failure opened it meanwhile
    with pytest.raises(errors.CircuitOpen):
        await waiting


# --- recovery -----------------------------------------------------------------------------------


async def test_recovery_callbacks_run_on_a_success_after_failures_and_not_on_a_429() -> None:
    gate = gate_with_circuit(threshold=2)
    woken: list[str] = []
    gate.on_recovery(lambda: woken.append("a"))
    await call(gate, 200)
    assert woken == []  # a fresh gate has nothing to recover from
    await call(gate, 503)
    await call(gate, 429)  # the circuit stays closed, but a rate limit is no reason to wake anyone
    assert woken == []
    await call(gate, 404)
    assert woken == ["a"]
    await call(gate, 200)
    assert woken == ["a"]


async def test_recovery_after_the_circuit_opened_and_closed() -> None:
    gate = gate_with_circuit(threshold=1, cooldown=10.0)
    await call(gate, 200)
    woken: list[int] = []
    unregister = gate.on_recovery(lambda: woken.append(1))
    await call(gate, 503)
    clock_of(gate).now += 10
    await call(gate, 200)  # the probe
    assert woken == [1]
    unregister()
    await call(gate, 503)
    clock_of(gate).now += 10
    await call(gate, 200)
    assert woken == [1]


async def test_a_failing_recovery_callback_neither_fails_the_call_nor_skips_the_others() -> None:
    gate = gate_with_circuit()
    woken: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    gate.on_recovery(broken)
    gate.on_recovery(lambda: woken.append("b"))
    await call(gate, 503)
    await call(gate, 200)
    assert woken == ["b"]


@pytest.mark.parametrize(
    ("status", "expected"), [(200, True), (204, True), (404, True), (401, False), (429, False), (503, False)]
)
def test_what_counts_as_success(status: int, expected: bool) -> None:
    assert succeeded(status) is expected


# --- snapshot and registry ----------------------------------------------------------------------


async def test_the_snapshot_is_what_the_account_status_reports() -> None:
    clock = Clock()
    gate = AccountGate(
        "a", Budget(5, 10, 3), Circuit(threshold=1, cooldown=10.0), clock=clock, wall=lambda: 1_700_000_000.0
    )
    assert gate.snapshot().status() == {
        "circuit": {"state": "Closed", "consecutiveFailures": 0},
        "budget": {"requestsPerSecond": 5.0, "burst": 10, "maxInFlight": 3, "available": 0.0, "inFlight": 0},
    }
    await call(gate, 502)
    clock.now += 60  # opened a minute ago, as the wall clock tells it
    status = gate.snapshot().status()
    assert status["circuit"] == {
        "state": "Open",
        "consecutiveFailures": 1,
        "openedAt": "2023-11-14T22:12:20Z",
    }
    assert status["budget"]["available"] == pytest.approx(5 * 0.2, abs=1)  # refilled after the first call
    assert "budget" not in AccountGate("b", None).snapshot().status()


@dataclass(frozen=True)
class Spec:
    """What api/account.py's RequestBudget offers."""

    requests_per_second: float
    burst: int
    max_in_flight: int


async def test_gates_keep_one_gate_per_account_and_rebuild_its_bucket_when_the_budget_changes() -> None:
    clock = Clock()
    gates = Gates(circuit=lambda: Circuit(threshold=1), clock=clock)
    key = ("ClusterConnectorAccount", "", "shared")
    recovered: list[object] = []
    gates.on_recovery(recovered.append)
    gate = gates.for_account(key, Spec(5, 10, 3))
    assert gate.name == "ClusterConnectorAccount shared"
    await call(gate, 503)
    assert gates.for_account(key, Spec(5, 10, 3)) is gate
    bucket = gate._bucket
    changed = gates.for_account(key, Spec(50, 10, 3))
    assert changed is gate  # callbacks and circuit kept
    assert gate._bucket is not bucket
    assert gate.budget == Budget(50, 10, 3)
    assert gate.circuit.state is CircuitState.OPEN
    assert gates.for_account(("ConnectorAccount", "team", "acme"), None).name == "ConnectorAccount team/acme"
    clock.now += 30  # past the cooldown: the next call is the probe
    await call(gate, 200)
    other = ("ConnectorAccount", "team", "acme")
    await call(gates.for_account(other, None), 503)
    clock.now += 30
    await call(gates.for_account(other, None), 200)
    assert recovered == [key, other]
    gates.forget(key)
    assert gates.get(key) is None


@pytest.mark.parametrize("budget", [(0, 1, 1), (1, 0, 1), (1, 1, 0), (float("nan"), 1, 1)])
def test_a_budget_needs_positive_numbers(budget: tuple[float, int, int]) -> None:
    with pytest.raises(ValueError, match="requestsPerSecond"):
        Budget(*budget)


# --- the client through a gate ------------------------------------------------------------------


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., InstancesClient]]:
    clients: list[InstancesClient] = []

    def make(handler: Callable[[httpx.Request], httpx.Response]) -> InstancesClient:
        client = InstancesClient(transport=httpx.MockTransport(handler), timeout=5.0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_every_page_of_a_search_passes_the_gate(make_client: Callable[..., InstancesClient]) -> None:
    pages = iter(
        [("p2", [{"id": 1, "token": "t", "tags": ["x"]}]), ("", [{"id": 2, "token": "t", "tags": ["x"]}])]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        token, page = next(pages)
        return httpx.Response(200, json=page, headers={"elements-next-page-token": token})

    gate = AccountGate("a", Budget(requests_per_second=1000, burst=1000, max_in_flight=1))
    admitted = 0
    real = gate.admit

    def counting(max_wait: float, **how: Any) -> Any:
        nonlocal admitted
        admitted += 1
        return real(max_wait, **how)

    gate.admit = counting  # type: ignore[method-assign]
    found = await make_client(handler).find_by_tag(API, CREDENTIALS, "x", gate=gate)
    assert [i.id for i in found] == [1, 2]
    assert admitted == 2


Call = Callable[[InstancesClient, AccountGate], Awaitable[Any]]
# The calls whose failures are the platform's: they carry no tenant configuration.
CALLS: list[Call] = [
    lambda c, g: c.get(API, CREDENTIALS, 1, gate=g),
    lambda c, g: c.delete(API, CREDENTIALS, 1, gate=g),
    lambda c, g: c.find_by_tag(API, CREDENTIALS, "x", gate=g),
    lambda c, g: c.patch(API, CREDENTIALS, 1, {"tags": ["x"]}, gate=g),
]
# POST and PUT carry the tenant's configuration, which the platform may hand to the vendor.
WITH_CONFIGURATION: list[Call] = [
    lambda c, g: c.create(API, CREDENTIALS, {"name": "n"}, gate=g, namespace="hers"),
    lambda c, g: c.update(API, CREDENTIALS, 1, {"name": "n"}, gate=g, namespace="hers"),
]


@pytest.mark.parametrize("method", CALLS)
async def test_every_method_reports_to_the_gate_and_sends_nothing_while_it_is_open(
    make_client: Callable[..., InstancesClient], method: Call
) -> None:
    sent = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        return httpx.Response(503, json={"message": "down"})

    client = make_client(handler)
    gate = gate_with_circuit(threshold=2)
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            await method(client, gate)
    with pytest.raises(errors.CircuitOpen):
        await method(client, gate)
    assert sent == 2


@pytest.mark.parametrize("method", WITH_CONFIGURATION)
async def test_failed_creates_and_updates_never_open_the_circuit(
    make_client: Callable[..., InstancesClient], method: Call
) -> None:
    """Tenant-findings N6: five 5xx or timeouts to one tenant's POSTs (a provider error her
    configuration provokes) opened a shared account's circuit for every team."""
    sent = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal sent
        sent += 1
        return httpx.Response(502, json={"message": "Provider server error"})

    client = make_client(handler)
    gate = gate_with_circuit(threshold=2)
    for _ in range(5):
        with pytest.raises(errors.ServerError):
            await method(client, gate)
    assert sent == 5
    assert gate.circuit.state is CircuitState.CLOSED


async def test_timeouts_and_network_errors_fail_the_circuit_and_an_invalid_url_does_not(
    make_client: Callable[..., InstancesClient],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make_client(handler)
    gate = gate_with_circuit(threshold=2)
    with pytest.raises(errors.NetworkError):
        await client.get("http://[::1/elements/api-v2", CREDENTIALS, 1, gate=gate)
    assert gate.circuit.consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(errors.NetworkError):
            await client.get(API, CREDENTIALS, 1, gate=gate)
    assert gate.circuit.state is CircuitState.OPEN


async def test_the_success_listener_hears_of_successes_for_its_host_and_credentials(
    make_client: Callable[..., InstancesClient],
) -> None:
    statuses = iter([200, 404, 401, 429, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return httpx.Response(status, json={"id": 1, "token": "t"} if status == 200 else {"message": "m"})

    client = make_client(handler)
    heard: list[tuple[str, Credentials]] = []
    client.on_success(lambda host, credentials: heard.append((host, credentials)))
    for _ in range(5):
        with contextlib.suppress(errors.APIError):
            await client.get(API, CREDENTIALS, 1)
    assert heard == [(host_of(API), CREDENTIALS)] * 2
