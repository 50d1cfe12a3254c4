"""A shared account's budget and circuit among tenants (openconnectors/budget.py, circuit.py),
tenant-findings N5 and N6: one namespace can take neither the account's calls in flight, nor its
tokens, nor open its circuit for the others."""

from __future__ import annotations

import asyncio
import time

import pytest

from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import AccountKey, AccountKind
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate, Budget, Gates
from connector_operator.openconnectors.circuit import OWN, Circuit, CircuitState
from connector_operator.openconnectors.client import Credentials
from connector_operator.reconciler import account
from connector_operator.reconciler.account import User
from tests.fixtures.runtime import build_runtime

CREDENTIALS = Credentials("user-secret", "organization-secret")
SHARED = Budget(requests_per_second=5, burst=1, max_in_flight=4)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def call_in(gate: AccountGate, namespace: str, status: int) -> None:
    async with gate.admit(5, namespace=namespace) as admission:
        await admission.paced(5)
        admission.record(status)


async def settled() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_namespace_s_hanging_calls_leave_the_account_a_slot_for_the_others() -> None:
    """N5: `maxInFlight: 4` was taken before the namespace's slot; four hanging calls of one team
    were the whole account, and everyone else got BudgetExhausted."""
    gate = AccountGate(
        "ClusterConnectorAccount shared", Budget(requests_per_second=1000, burst=50, max_in_flight=4)
    )
    release = asyncio.Event()

    async def hang() -> None:
        async with gate.admit(30, namespace="a") as admission:
            await admission.paced(30)
            await release.wait()
            admission.record(200)

    hers = [asyncio.create_task(hang()) for _ in range(8)]
    async with asyncio.timeout(1):  # the bucket starts empty: 3 ms refill her three tokens
        while gate.snapshot().in_flight < 3:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.005)
    await settled()
    assert gate.snapshot().in_flight == 3
    async with asyncio.timeout(1), gate.admit(30, namespace="b") as admission:
        await admission.paced(30)
        admission.record(200)
    release.set()
    await asyncio.gather(*hers)


async def test_another_namespace_is_not_refused_for_the_length_of_one_namespace_s_queue() -> None:
    """N6: the early refusal counted every caller queued: 300 of one team's calls at 5/s made the
    other team's one call "wait 60 s" and refused it at once."""
    gate = AccountGate("ClusterConnectorAccount shared", SHARED)
    release = asyncio.Event()

    async def queued() -> None:
        try:
            async with gate.admit(120, namespace="a") as admission:
                await admission.paced(120)
                await release.wait()
        except errors.BudgetExhausted:
            pass

    hers = [asyncio.create_task(queued()) for _ in range(300)]
    await settled()
    started = time.monotonic()
    async with gate.admit(30, namespace="b") as admission:  # her queue: 300 / 5 = 60 s
        await admission.paced(30)
        admission.record(200)
    # In turn: behind at most one of hers per free slot and one token each (5/s).
    assert time.monotonic() - started < 2.0
    for task in hers:
        task.cancel()
    await asyncio.gather(*hers, return_exceptions=True)


def failing(circuit: Circuit, sources: list[str]) -> None:
    for source in sources:
        circuit.record(False, 0.0, source)


def test_one_namespace_s_failures_do_not_open_a_shared_account_s_circuit() -> None:
    circuit = Circuit(threshold=5)
    failing(circuit, ["a"] * 20)
    assert circuit.state is CircuitState.CLOSED


@pytest.mark.parametrize("sources", [["a", "b"] * 3, ["a"] * 3 + ["b"] * 3, ["a"] * 4 + [OWN]])
def test_failures_from_two_namespaces_or_the_account_s_own_check_open_it(sources: list[str]) -> None:
    circuit = Circuit(threshold=5)
    failing(circuit, sources)
    assert circuit.state is CircuitState.OPEN


def test_one_namespace_s_many_failures_and_another_s_chance_failure_do_not_open_it() -> None:
    """Review: counted as sources alone, one tenant's 40 failures and any other's one opened it."""
    circuit = Circuit(threshold=5)
    failing(circuit, ["a"] * 40 + ["b"])
    assert circuit.state is CircuitState.CLOSED


def test_one_namespace_s_failing_probe_does_not_keep_it_open() -> None:
    """Review: half-open, her call was the probe and its failure alone reopened the circuit for
    everyone, for longer each time."""
    circuit = Circuit(threshold=5, cooldown=15.0)
    failing(circuit, ["a", "b"] * 3)
    assert circuit.state is CircuitState.OPEN
    assert circuit.allow(20.0)  # her call probes
    circuit.record(False, 20.0, "a")
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.allow(20.1)  # the next caller probes at once
    circuit.record(True, 20.2, "b")
    assert circuit.state is CircuitState.CLOSED


def test_probes_failing_for_two_namespaces_reopen_it() -> None:
    circuit = Circuit(threshold=5, cooldown=15.0)
    failing(circuit, ["a", "b"] * 3)
    for source in ("a", "b"):
        assert circuit.allow(20.0)
        circuit.record(False, 20.0, source)
    assert circuit.state is CircuitState.OPEN


def test_a_success_starts_the_count_of_sources_again() -> None:
    circuit = Circuit(threshold=3)
    failing(circuit, ["a", "b"])
    circuit.record(True, 0.0, "c")
    failing(circuit, ["a"] * 3)
    assert circuit.state is CircuitState.CLOSED


def test_a_namespaced_account_s_one_tenant_opens_its_circuit() -> None:
    gates = Gates()
    own = gates.for_account(("ConnectorAccount", "team", "acme"), None, single_tenant=True)
    shared = gates.for_account(("ClusterConnectorAccount", "", "shared"), None)
    for gate in (own, shared):
        for _ in range(5):
            gate._record(503, "team")
    assert own.circuit.state is CircuitState.OPEN
    assert shared.circuit.state is CircuitState.CLOSED


async def test_a_recovery_wakes_only_the_objects_waiting_to_retry_and_a_bounded_number() -> None:
    """N6: every recovery (at most one per 10 s, which one tenant's failures can cause) woke every
    instance of the account: 10,000 passes for 10,000 instances."""
    runtime = build_runtime()
    woken: list[tuple[str, str]] = []
    runtime.wakeups.fallback = woken.append
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    users = [User("team", f"ci-{index:04}", deleting=False) for index in range(1000)]
    waiting = {(user.namespace, user.name) for user in users[::2]}  # half of them retry later
    circuit_open = outcomes.retrying(Reason.ACCOUNT_UNAVAILABLE, "open", ready=True, retry_after=5)
    for object_key in waiting:
        runtime.retries.failed(object_key, circuit_open)
    await account._retry_waiting(runtime, key, {key: users})
    assert len(woken) == account.RECOVERY_WAKES
    assert set(woken) <= waiting


class Checks:
    """Records whose call each account check is (the client's `namespace=`)."""

    def __init__(self) -> None:
        self.namespaces: list[str | None] = []

    async def find_by_tag(self, *_: object, namespace: str | None = None, **__: object) -> list[object]:
        self.namespaces.append(namespace)
        return []


async def test_a_namespaced_account_s_check_is_its_namespace_s_call() -> None:
    """N4: a namespaced ConnectorAccount's credential check passed no namespace, so it escaped
    the namespace's share: N accounts sharing one Secret made each write of it N calls that
    queued with everyone's at the shared host."""
    checks = Checks()
    runtime = build_runtime(instances=checks)
    for key in (
        AccountKey(AccountKind.CONNECTOR_ACCOUNT, "team", "acme"),
        AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared"),
    ):
        gate = runtime.gate(key, None)
        verdict = await account._verify(
            runtime, runtime.accounts.state(key), "https://api.example", CREDENTIALS, gate, key
        )
        assert verdict.kind is outcomes.Kind.SUCCESS
    assert checks.namespaces == ["team", None]  # a cluster account's check is the operator's own


async def test_a_call_waiting_for_its_turn_does_not_hold_the_probe_from_the_others() -> None:
    """Review: the half-open circuit's probe was chosen on arrival, so one tenant's call waiting
    behind her own queue held it, and every other namespace was refused for its expiry (15 s)."""
    clock = Clock()
    gate = AccountGate(
        "shared", Budget(requests_per_second=10, burst=1, max_in_flight=4), Circuit(threshold=1), clock=clock
    )
    gate._record(503)  # the account's own check failed: open
    clock.now += 20  # the cooldown has passed: the next call to get through probes
    hers = asyncio.create_task(call_in(gate, "a", 200))
    await settled()  # hers waits for a token (the bucket starts empty)
    async with asyncio.timeout(1):
        await call_in(gate, "b", 200)  # not refused: no probe is out while hers only waits
    await hers
    assert gate.circuit.state is CircuitState.CLOSED


async def test_a_recovery_wakes_the_namespaces_in_turn() -> None:
    """Review: sorted by failures alone, a tenant whose objects keep failing took all 200 wakes."""
    runtime = build_runtime()
    woken: list[tuple[str, str]] = []
    runtime.wakeups.fallback = woken.append
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    hers = [User("team-a", f"ci-{index:04}", deleting=False) for index in range(500)]
    theirs = [User("team-b", f"ci-{index:04}", deleting=False) for index in range(3)]
    failed = outcomes.retrying(Reason.API_UNAVAILABLE, "502", ready=True)
    for user in hers:
        for _ in range(5):
            runtime.retries.failed((user.namespace, user.name), failed)
    for user in theirs:
        runtime.retries.failed((user.namespace, user.name), failed)
    await account._retry_waiting(runtime, key, {key: hers + theirs})
    assert len(woken) == account.RECOVERY_WAKES
    assert {(user.namespace, user.name) for user in theirs} <= set(woken[:6])


async def test_the_expected_wait_counts_the_other_namespace_s_calls_already_holding_slots() -> None:
    """Review: with one call counted per other namespace, B's estimate was 0.15 s while three of
    A's slot holders queued for their tokens first: B queued, and was refused after its whole
    wait."""
    gate = AccountGate("shared", Budget(requests_per_second=10, burst=1, max_in_flight=4))
    release = asyncio.Event()

    async def hers() -> None:
        async with gate.admit(30, namespace="a") as admission:
            await admission.paced(30)
            await release.wait()

    calls = [asyncio.create_task(hers()) for _ in range(10)]
    await settled()
    bucket = gate._bucket
    assert bucket is not None
    # Ahead of B's call: A's 3 slot holders (B takes the 4th slot at once), then B's own: 4 tokens
    # at 10/s from an empty bucket. Counting one call of A's, it was 0.2 s.
    assert bucket.expected_wait("b") == pytest.approx(0.4, abs=0.05)
    release.set()
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
