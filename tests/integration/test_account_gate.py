"""An account's gate in front of the real client, over HTTP against the simulator process: the
request budget holds at the platform under a burst, across a restart too, and the circuit breaker
spares a failing platform and closes once it answers again.

Rates are measured from the simulator's request log (when each call arrived there), not from the
client's own counting. The operator-level versions of these tests (instances of a
ConnectorAccount) build on the account handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate, Budget
from connector_operator.openconnectors.circuit import Circuit, CircuitState
from connector_operator.openconnectors.client import Credentials, InstancesClient
from tests.fixtures.simulator import SimulatorHandle
from tests.fixtures.waiting import eventually
from tests.integration.support import densest_window_excess
from tests.simulator.support import closeio_body

# Arrivals may bunch by up to this much after their tokens were granted (scheduling, loopback).
JITTER = 0.1


@pytest.fixture
async def client() -> AsyncIterator[InstancesClient]:
    instances = InstancesClient()  # the production bounds: 30 s deadline, 32 in flight, 8 per host
    yield instances
    await instances.aclose()


def credentials(simulator: SimulatorHandle) -> Credentials:
    return Credentials(simulator.user_secret, simulator.organization_secret)


def arrivals(simulator: SimulatorHandle, method: str) -> list[float]:
    return sorted(r["at"] for r in simulator.control.requests() if r["method"] == method)


@pytest.mark.slow
async def test_a_budget_of_5_per_second_holds_under_a_burst_of_100_creates(
    simulator: SimulatorHandle, client: InstancesClient
) -> None:
    budget = Budget(requests_per_second=5, burst=5, max_in_flight=10)
    gate = AccountGate("ClusterConnectorAccount shared", budget)
    simulator.control.reset_counters()
    started = time.time()
    created = await asyncio.gather(
        *(
            client.create(simulator.api_url, credentials(simulator), closeio_body(f"burst-{n}"), gate=gate)
            for n in range(100)
        )
    )
    assert len({instance.id for instance in created}) == 100
    times = arrivals(simulator, "POST")
    assert len(times) == 100
    assert densest_window_excess(times, budget) <= 0
    # Started empty: no burst at the start either, and no slower than the budget allows.
    assert times[0] - started >= 1 / 5 - JITTER
    assert 99 / 5 - JITTER <= times[-1] - times[0] <= 99 / 5 + 2


async def test_a_restart_adds_no_burst(simulator: SimulatorHandle, client: InstancesClient) -> None:
    """A process that used its full bucket is replaced by a new one (a new gate): a bucket that
    started full would send a second burst at once; one that starts empty keeps the promise."""
    budget = Budget(requests_per_second=5, burst=10, max_in_flight=20)
    before = AccountGate("a", budget)
    await _one_call(before, client, simulator, "warm-up")  # starts the bucket (empty)
    # It fills up, as it would while an operator is idle.
    await eventually(lambda: before.snapshot().available >= budget.burst - 0.5, 5, "the bucket to fill")
    simulator.control.reset_counters()
    await asyncio.gather(*(_one_call(before, client, simulator, f"before-{n}") for n in range(10)))
    after = AccountGate("a", budget)  # the restarted operator's gate
    await asyncio.gather(*(_one_call(after, client, simulator, f"after-{n}") for n in range(10)))
    times = arrivals(simulator, "GET")
    assert len(times) == 20
    assert times[9] - times[0] < 1  # the first process's burst went at once, as allowed
    assert densest_window_excess(times, budget) <= 0


async def _one_call(gate: AccountGate, client: InstancesClient, simulator: SimulatorHandle, tag: str) -> None:
    await client.find_by_tag(simulator.api_url, credentials(simulator), tag, gate=gate)


async def _get(client: InstancesClient, simulator: SimulatorHandle, gate: AccountGate | None) -> None:
    with contextlib.suppress(errors.NotFound):
        await client.get(simulator.api_url, credentials(simulator), 1, gate=gate)


async def test_the_circuit_spares_a_failing_platform_and_closes_when_it_answers(
    simulator: SimulatorHandle, client: InstancesClient
) -> None:
    simulator.control.set_error_rate({"*": 1.0}, status=503)
    simulator.control.reset_counters()
    for _ in range(100):  # without a gate, every call reaches the failing platform
        with pytest.raises(errors.ServerError):
            await _get(client, simulator, None)
    assert len(arrivals(simulator, "GET")) == 100

    gate = AccountGate(
        "ConnectorAccount team/acme", None, Circuit(threshold=5, cooldown=1.0, max_cooldown=2.0)
    )
    recoveries: list[float] = []
    gate.on_recovery(lambda: recoveries.append(time.time()))
    simulator.control.reset_counters()
    refused = 0
    for _ in range(100):
        try:
            await _get(client, simulator, gate)
        except errors.CircuitOpen:
            refused += 1
        except errors.ServerError:
            pass
    assert len(arrivals(simulator, "GET")) == 5  # the threshold, then nothing until the cooldown
    assert refused == 95
    assert gate.circuit.state is CircuitState.OPEN

    # The platform recovers: the first call after the cooldown is the one probe, and it closes.
    simulator.control.clear_faults()
    simulator.control.reset_counters()
    async with asyncio.timeout(10):
        while True:
            try:
                await _get(client, simulator, gate)
                break
            except errors.CircuitOpen as error:
                await asyncio.sleep(min(error.retry_after, 0.1))
    assert len(arrivals(simulator, "GET")) == 1
    assert gate.circuit.state is CircuitState.CLOSED
    assert len(recoveries) == 1
    await _get(client, simulator, gate)
    assert len(arrivals(simulator, "GET")) == 2
