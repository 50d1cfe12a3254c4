"""The scheduler of passes (engine/scheduler.py): one pass per object at a time, no wake-up lost,
timers, deletion, peering pauses and the stop. Real asyncio; each test waits on what the passes
signal, never on the clock."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from connector_operator.engine.scheduler import Scheduler

A = ("team-a", "crm")
B = ("team-b", "erp")
WAIT = 5.0  # an upper bound for what must happen at once; the tests wait on events, not on it


class Passes:
    """Passes that record themselves, and can be held inside until released."""

    def __init__(self, delay: float = math.inf) -> None:
        self.delay = delay
        self.started: list[tuple[str, str]] = []
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()
        self.count_changed = asyncio.Condition()

    async def run(self, key: tuple[str, str]) -> float:
        self.started.append(key)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.entered.set()
        async with self.count_changed:
            self.count_changed.notify_all()
        try:
            await self.release.wait()
        finally:
            self.running -= 1
            async with self.count_changed:
                self.count_changed.notify_all()
        return self.delay

    async def until_running(self, count: int) -> None:
        async with self.count_changed:
            await asyncio.wait_for(self.count_changed.wait_for(lambda: self.running >= count), WAIT)

    async def until(self, count: int) -> None:
        async with self.count_changed:
            await asyncio.wait_for(
                self.count_changed.wait_for(lambda: len(self.started) >= count and self.running == 0), WAIT
            )


async def holding_a_pass(delay: float = math.inf) -> tuple[Passes, Scheduler]:
    """A scheduler whose first pass, over A, has started and is held until `passes.release`."""
    passes = Passes(delay=delay)
    passes.release.clear()
    scheduler = Scheduler(passes.run, failure_delay=60)
    scheduler.track(A)
    await asyncio.wait_for(passes.entered.wait(), WAIT)
    return passes, scheduler


async def test_a_wake_up_during_a_pass_runs_exactly_one_more_after_it() -> None:
    passes, scheduler = await holding_a_pass()
    for _ in range(3):  # three changes while the pass runs
        scheduler.wake(A)
    passes.release.set()
    await passes.until(2)
    assert passes.started == [A, A]
    assert passes.most_at_once == 1  # never two passes of one object at once
    assert not scheduler.running(A)


async def test_objects_have_passes_of_their_own_at_the_same_time() -> None:
    passes = Passes()
    passes.release.clear()
    scheduler = Scheduler(passes.run, failure_delay=60)
    scheduler.track(A)
    scheduler.track(B)
    await passes.until_running(2)
    assert passes.most_at_once == 2  # one object's slow pass does not hold another's
    passes.release.set()
    await passes.until(2)


async def test_the_delay_a_pass_returns_schedules_the_next() -> None:
    passes = Passes(delay=0.01)
    scheduler = Scheduler(passes.run, failure_delay=60)
    scheduler.track(A)
    await passes.until(3)  # came back by itself, twice
    scheduler.forget(A)
    assert set(passes.started) == {A}


async def test_a_closed_object_gets_no_more_passes_and_the_running_one_is_awaited() -> None:
    passes, scheduler = await holding_a_pass(delay=0.01)
    scheduler.close(A)
    scheduler.wake(A)
    idle = asyncio.create_task(scheduler.wait_idle(A, WAIT))
    await asyncio.sleep(0)
    assert not idle.done()  # the delete waits for the pass (it may be in the middle of a create)
    passes.release.set()
    assert await idle
    assert await scheduler.wait_idle(A, WAIT)
    assert passes.started == [A]  # neither the wake-up nor the returned delay ran another


async def test_wait_idle_reports_a_pass_that_does_not_end() -> None:
    passes, scheduler = await holding_a_pass()
    assert not await scheduler.wait_idle(A, 0.01)
    passes.release.set()
    assert await scheduler.wait_idle(A, WAIT)


async def test_a_pause_defers_passes_until_resumed() -> None:
    passes = Passes()
    scheduler = Scheduler(passes.run, failure_delay=60)
    scheduler.pause()
    scheduler.track(A)
    scheduler.wake(A)
    await asyncio.sleep(0)
    assert passes.started == []
    assert scheduler.paused
    scheduler.resume()
    await passes.until(1)
    assert passes.started == [A]


async def test_a_pause_holds_timers_too() -> None:
    passes = Passes(delay=3600)
    scheduler = Scheduler(passes.run, failure_delay=60)
    scheduler.track(A)
    await passes.until(1)
    assert scheduler.scheduled(A)  # the next pass, in an hour
    scheduler.pause()
    assert not scheduler.scheduled(A)  # no timer runs while paused: it is deferred instead
    scheduler.resume()
    await passes.until(2)  # the deferred pass, at once
    scheduler.forget(A)


async def test_a_pass_that_raises_is_logged_and_tried_again_later(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, str]] = []
    again = asyncio.Event()

    async def failing(key: tuple[str, str]) -> float:
        calls.append(key)
        if len(calls) == 2:
            again.set()
            return math.inf
        raise RuntimeError("a bug")

    scheduler = Scheduler(failing, failure_delay=0.01)
    with caplog.at_level(logging.ERROR):
        scheduler.track(A)
        await asyncio.wait_for(again.wait(), WAIT)
    assert calls == [A, A]
    assert "pass over team-a/crm failed" in caplog.text


async def test_stop_waits_for_a_running_pass_that_ends_in_time() -> None:
    passes, scheduler = await holding_a_pass(delay=3600)
    stopping = asyncio.create_task(scheduler.stop(timeout=WAIT))
    await asyncio.sleep(0)
    assert not stopping.done()  # the pass runs: stop waits for it
    passes.release.set()
    await asyncio.wait_for(stopping, WAIT)
    assert passes.started == [A]
    assert not scheduler.scheduled(A)  # and no next pass is set up


async def test_stop_lets_running_passes_finish_then_cancels_the_rest() -> None:
    passes, scheduler = await holding_a_pass(delay=0.01)
    stopping = asyncio.create_task(scheduler.stop(timeout=0.05))
    await asyncio.wait_for(stopping, WAIT)  # the pass never ends by itself: cancelled at the timeout
    assert passes.running == 0
    scheduler.wake(A)
    scheduler.track(B)
    await asyncio.sleep(0)
    assert passes.started == [A]  # nothing starts once stopping


async def test_forgetting_a_running_object_leaves_no_timer_behind() -> None:
    passes, scheduler = await holding_a_pass(delay=3600)
    scheduler.forget(A)
    assert scheduler.running(A)  # still draining: a new object of that name would wait for it
    passes.release.set()
    assert await scheduler.wait_idle(A, WAIT)
    assert not scheduler.running(A)
    assert not scheduler.scheduled(A)
    assert A not in scheduler
    assert len(scheduler) == 0


async def test_an_object_made_again_under_its_name_waits_for_the_old_one_s_pass() -> None:
    passes, scheduler = await holding_a_pass()
    scheduler.forget(A)  # deleted while its pass runs (kopf's DELETED came early)
    scheduler.track(A)  # and created again under the same name
    idle = asyncio.create_task(scheduler.wait_idle(A, WAIT))
    await asyncio.sleep(0)
    assert not idle.done()  # a delete of the new object waits for the old object's pass too
    assert passes.running == 1
    passes.release.set()
    await passes.until(2)  # then the new object's first pass
    assert await idle
    assert passes.most_at_once == 1
