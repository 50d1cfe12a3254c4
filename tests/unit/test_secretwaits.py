"""`engine.secretwaits.SecretWaits`: the shared watch that wakes objects waiting for a Secret
never stays dead while someone waits (issue 9 review, finding 3).

A fake `Secrets` stands for the API server (the real one is in
tests/integration/test_secret_waits.py). Covers: whatever a watch raises (a server disconnect, a
broken payload, a line too long for aiohttp, an unexpected error) every waiter of the scope is
woken to look again and the watch resumes; an event too large to read wakes every waiter, and a
flood of them once per `UNREAD_WAKE_SECONDS` (the ones in between folded into the next wake); a
watch task that ended all the same (a BaseException) is replaced by the next interest, which
wakes everyone; cancellation still ends it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from connector_operator.engine import secretwaits
from connector_operator.engine.secretwaits import SecretWaits
from connector_operator.engine.wakeups import Wakeups
from tests.fixtures.waiting import eventually

UNREAD = ("*", "*")  # kube.secrets.UNREAD: an event too large to read

NS = "team"
WAITER = (NS, "waiter")


class Dead(BaseException):
    """Not an Exception: ends a task whatever it catches, short of BaseException."""


class FakeSecrets:
    """`watch_names` runs the next scripted watch: a list of events, then an exception (or an
    endless wait); every call is counted."""

    def __init__(self, *watches: tuple[list[tuple[str, Any]], BaseException | None]) -> None:
        self.watches = list(watches)
        self.calls = 0
        self.drained = asyncio.Event()  # set once the watcher has taken every scripted event

    async def watch_names(
        self, namespace: str | None, timeout: float, since: str | None = None
    ) -> AsyncIterator[tuple[str, Any]]:
        self.calls += 1
        events, ending = self.watches.pop(0) if self.watches else ([], None)
        for event in events:
            yield event
        self.drained.set()
        if ending is not None:
            raise ending
        await asyncio.Event().wait()  # a watch that stays open


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secretwaits, "RETRY_SECONDS", (0.01, 0.05))


async def woken(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), 5)


async def until(predicate: Callable[[], bool]) -> None:
    await eventually(predicate, 5, "the watch's state", interval=0.01)


@pytest.mark.parametrize(
    "error",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("broken chunk"),
        ValueError("Got more than 524288 bytes when reading"),  # aiohttp's LineTooLong is a ValueError
        RuntimeError("anything else"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_any_watch_failure_wakes_the_waiters_and_the_watch_resumes(error: Exception) -> None:
    wakeups = Wakeups()
    secrets = FakeSecrets(([("1", None)], error))
    waits = SecretWaits(secrets, wakeups, clusterwide=False)  # type: ignore[arg-type]
    wake = wakeups.register(WAITER)
    with waits.interest(NS, "later", WAITER):
        await woken(wake)  # changes in between were not seen: look again
        await until(lambda: secrets.calls == 2)  # and the watch is back
        assert not waits.watches[NS].done()
    await waits.close()


async def test_an_event_too_large_to_read_wakes_every_waiter() -> None:
    wakeups = Wakeups()
    secrets = FakeSecrets(([("1", None), ("2", UNREAD)], None))
    waits = SecretWaits(secrets, wakeups, clusterwide=False)  # type: ignore[arg-type]
    other = (NS, "other")
    wakes = [wakeups.register(WAITER), wakeups.register(other)]
    with waits.interest(NS, "later", WAITER), waits.interest(NS, "never", other):
        for wake in wakes:
            await woken(wake)
        assert secrets.calls == 1  # the watch goes on
    await waits.close()


def unread_flood(events: int) -> FakeSecrets:
    """A watch that starts, then reports `events` unreadable events (a tenant rewriting a Secret of
    thousands of labels), each handled as it comes (the fake's events arrive without a pause)."""
    return FakeSecrets(([("1", None), *((str(n), UNREAD) for n in range(2, events + 2))], None))


async def test_a_flood_of_unreadable_events_wakes_everyone_once_per_interval() -> None:
    """tenant-findings N13: each such event woke every waiter, account daemons included (a Secret
    GET each, usually a status write): a thousand writes cost each a thousand passes."""
    woken: Counter[tuple[str, str]] = Counter()
    secrets = unread_flood(1000)
    waits = SecretWaits(secrets, Wakeups(fallback=lambda key: woken.update([key])), clusterwide=False)  # type: ignore[arg-type]
    other = (NS, "other")
    with waits.interest(NS, "later", WAITER), waits.interest(NS, "never", other):
        await asyncio.wait_for(secrets.drained.wait(), 5)
        assert woken == {WAITER: 1, other: 1}  # the first at once; the others folded into one, due later
        assert NS in waits.unread_due
    assert waits.unread_due == {}  # nobody waits any more: nobody to wake
    await waits.close()


async def test_unreadable_events_folded_into_the_next_wake_are_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(secretwaits, "UNREAD_WAKE_SECONDS", 0.05)
    woken: Counter[tuple[str, str]] = Counter()
    secrets = unread_flood(1000)
    waits = SecretWaits(secrets, Wakeups(fallback=lambda key: woken.update([key])), clusterwide=False)  # type: ignore[arg-type]
    with waits.interest(NS, "later", WAITER):
        await asyncio.wait_for(secrets.drained.wait(), 5)
        # One of the later events may have been the waiter's Secret: the interval's end wakes it.
        await until(lambda: woken[WAITER] == 2)
        assert waits.unread_due == {}
    await waits.close()


async def test_a_watch_that_ended_is_replaced_by_the_next_interest() -> None:
    wakeups = Wakeups()
    secrets = FakeSecrets(([], Dead()))
    waits = SecretWaits(secrets, wakeups, clusterwide=False)  # type: ignore[arg-type]
    forever, wake = (NS, "forever"), wakeups.register(WAITER)
    with waits.interest(NS, "never", forever):
        first = waits.watches[NS]
        await until(first.done)
        with waits.interest(NS, "later", WAITER):
            assert waits.watches[NS] is not first
            assert secrets.calls == 1 or not waits.watches[NS].done()
            await woken(wake)  # the dead watch may have missed its Secret: look again
            await until(lambda: secrets.calls == 2)
    await waits.close()


async def test_cancellation_still_ends_the_watch() -> None:
    secrets = FakeSecrets()
    waits = SecretWaits(secrets, Wakeups(), clusterwide=False)  # type: ignore[arg-type]
    with waits.interest(NS, "later", WAITER):
        task = waits.watches[NS]
        await until(lambda: secrets.calls == 1)
    await until(task.done)
    assert task.cancelled()
    await waits.close()


async def test_watching_returns_once_the_watch_has_its_starting_point() -> None:
    """A waiter looks at its Secret once more after `watching`: a change before that look is seen
    by the look, any later one by the watch. Looking before the watch had its starting point lost
    the changes in between (found by CI: an account's fixed Secret slept until the resync)."""
    listed = asyncio.Event()

    class Slow(FakeSecrets):
        async def watch_names(
            self, namespace: str | None, timeout: float, since: str | None = None
        ) -> AsyncIterator[tuple[str, Any]]:
            await listed.wait()  # the LIST that gives the starting resourceVersion, answered late
            async for event in super().watch_names(namespace, timeout, since):
                yield event

    waits = SecretWaits(Slow(([("1", None)], None)), Wakeups(), clusterwide=False)  # type: ignore[arg-type]
    with waits.interest(NS, "later", WAITER):
        watching = asyncio.ensure_future(waits.watching(NS))
        await asyncio.sleep(0)  # let it run up to its wait; it must not return yet
        assert not watching.done()
        listed.set()
        await asyncio.wait_for(watching, 5)
    await waits.close()


async def test_watching_gives_up_after_its_timeout_when_the_watch_never_starts() -> None:
    class Never(FakeSecrets):
        async def watch_names(
            self, namespace: str | None, timeout: float, since: str | None = None
        ) -> AsyncIterator[tuple[str, Any]]:
            await asyncio.Event().wait()
            yield "never", None

    waits = SecretWaits(Never(), Wakeups(), clusterwide=False)  # type: ignore[arg-type]
    with waits.interest(NS, "later", WAITER):
        await asyncio.wait_for(waits.watching(NS, timeout=0.05), 5)
        assert not waits.started[NS].is_set()
    await waits.close()


class Readable(FakeSecrets):
    """A watch that starts at once, and Secrets to read: name -> fingerprint (absent: missing)."""

    def __init__(self, fingerprints: dict[str, str]) -> None:
        super().__init__(*[([("1", None)], None)] * 4)
        self.fingerprints = fingerprints

    async def read(self, namespace: str, name: str) -> Any:
        found = self.fingerprints.get(name)
        return None if found is None else type("View", (), {"fingerprint": found})()


async def test_a_held_interest_looks_once_when_it_begins_and_moves_with_the_secret() -> None:
    secrets = Readable({"creds": "v2", "other": "o1"})
    waits = SecretWaits(secrets, Wakeups(), clusterwide=False)  # type: ignore[arg-type]
    held = secretwaits.HeldInterest(waits, WAITER)
    assert await held.follow((NS, "creds"), "v1")  # changed between the pass (v1) and the watch
    assert waits.waiting == {(NS, "creds"): {WAITER}}
    assert not await held.follow((NS, "creds"), "v1")  # held: the watch reports changes now
    assert not await held.follow((NS, "other"), "o1")  # moved, and unchanged
    assert waits.waiting == {(NS, "other"): {WAITER}}
    assert await held.follow((NS, "gone"), "g1")  # missing now: a change too
    assert not await held.follow(None, None)
    assert waits.waiting == {}
    held.close()
    await waits.close()
