"""Fair shares of a shared bound (openconnectors/fair.py, slots.py), tenant-findings N5 and N10:
one namespace's queue or hanging calls cannot hold a resource every tenant shares."""

from __future__ import annotations

import asyncio

import pytest

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.fair import OPERATOR, FairSlots, share_of
from connector_operator.openconnectors.slots import Slots


async def settled() -> None:
    """Let every task that can run, run (each step of a waiter is one loop iteration)."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_the_default_share_leaves_a_quarter_and_at_least_one_slot_for_the_others() -> None:
    assert [share_of(size) for size in (1, 2, 3, 4, 8, 32)] == [1, 1, 2, 3, 6, 24]


async def test_a_namespace_alone_holds_its_share_and_never_the_reserve() -> None:
    slots = FairSlots(4)
    release = asyncio.Event()

    async def hang() -> None:
        async with slots.hold("a"):
            await release.wait()

    hers = [asyncio.create_task(hang()) for _ in range(10)]
    await settled()
    assert slots.held("a") == 3
    assert slots.waiting("a") == 7
    # Her calls hang: without the reserve, another namespace's call would wait for their deadline.
    async with asyncio.timeout(1):
        async with slots.hold("b"):
            assert slots.held("b") == 1
    release.set()
    await asyncio.gather(*hers)
    assert slots.in_use == 0


async def test_a_waiting_namespace_gets_the_next_freed_slot_however_long_the_other_queue() -> None:
    slots = FairSlots(2, share=2)
    order: list[str] = []
    gates = {key: asyncio.Event() for key in ("a", "b")}

    async def call(key: str) -> None:
        async with slots.hold(key):
            order.append(key)
            await gates[key].wait()

    hers = [asyncio.create_task(call("a")) for _ in range(300)]
    await settled()
    theirs = asyncio.create_task(call("b"))
    await settled()
    assert order == ["a", "a"]
    for gate in gates.values():  # each call ends as soon as it starts: slots free one by one
        gate.set()
    await asyncio.wait_for(theirs, 1)
    # First come, first served, "b" would have been 301st; served in turn, it is third or fourth.
    assert order.index("b") <= 3
    await asyncio.gather(*hers)


async def test_namespaces_with_waiting_calls_are_served_in_turn() -> None:
    slots = FairSlots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def call(key: str) -> None:
        async with slots.hold(key):
            order.append(key)
            await release.wait()

    first = asyncio.create_task(call("a"))
    await settled()
    queued = [asyncio.create_task(call(key)) for key in ["a"] * 5 + ["b"] * 2 + ["c"]]
    await settled()
    release.set()
    await asyncio.gather(first, *queued)
    assert order == ["a", "a", "b", "c", "a", "b", "a", "a", "a"]


async def test_a_wait_is_bounded_and_a_timed_out_or_cancelled_waiter_leaves_nothing_behind() -> None:
    slots = FairSlots(1)
    release = asyncio.Event()

    async def hold() -> None:
        async with slots.hold("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await settled()
    with pytest.raises(TimeoutError):
        async with slots.hold("b", max_wait=0.05):
            pass
    cancelled = asyncio.create_task(hold())
    await settled()
    cancelled.cancel()
    await settled()
    assert slots.waiting("a") == 0
    assert slots.waiting("b") == 0
    release.set()
    await holder
    assert slots.in_use == 0


async def test_the_operator_s_own_calls_take_turns_but_are_not_held_to_a_share() -> None:
    slots = FairSlots(4)
    release = asyncio.Event()

    async def call(key: str) -> None:
        async with slots.hold(key):
            await release.wait()

    own = [asyncio.create_task(call(OPERATOR)) for _ in range(4)]
    await settled()
    assert slots.held(OPERATOR) == 4
    release.set()
    await asyncio.gather(*own)


async def test_one_namespace_hanging_on_the_only_host_leaves_the_others_a_slot_at_once() -> None:
    """N5: the per-namespace bound was the per-host bound (8 and 8): one namespace's eight slow
    calls to the one platform host everyone uses held all of it, and the others queued behind
    her queue for the calls' deadline."""
    slots = Slots(total=32, per_host=8)
    release = asyncio.Event()

    async def slow() -> None:
        async with slots.hold("api.openconnectors.example", "a"):
            await release.wait()

    hers = [asyncio.create_task(slow()) for _ in range(40)]
    await settled()
    host = slots.host("api.openconnectors.example")
    assert host is not None
    assert host.held("a") == 6
    async with asyncio.timeout(1), slots.hold("api.openconnectors.example", "b"):
        pass
    release.set()
    await asyncio.gather(*hers)


async def test_a_call_waits_for_its_slots_at_most_its_bound_and_then_holds_none() -> None:
    slots = Slots(total=2, per_host=2, per_namespace=2)
    release = asyncio.Event()

    async def hold(host: str) -> None:
        async with slots.hold(host, "a"):
            await release.wait()

    holders = [asyncio.create_task(hold(f"h{i}")) for i in range(2)]
    await settled()
    with pytest.raises(errors.NoSlot, match=r"no call slot for h3 within 0\.05s"):
        async with slots.hold("h3", "a", max_wait=0.05):
            pass
    assert slots.host("h3") is None  # nothing kept of the host that got no slot
    release.set()
    await asyncio.gather(*holders)
