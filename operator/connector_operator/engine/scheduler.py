"""When each object's next pass runs: a timer or a wake-up per object, and a task only while a pass runs.

This replaced a kopf daemon per ConnectorInstance. A daemon kept a task, kopf's daemon machinery
and the object's latest body alive for as long as the object existed: about 45 KiB per object at
rest, and a wake-up through kopf for every watch event (bench/README.md, "Memory per object").
Here an object between passes is a `Slot` and at most one timer handle.

The rules are the daemon loop's: at most one pass per object at a time; a wake-up during a pass
runs one more pass right after it, so no change is lost; each pass says when the next one is due.
No pass starts for an object being deleted (`close`), while the operator is paused by peering
(`pause`), or once it is stopping (`stop`); a pass already running is let finish, as kopf let a
daemon finish its loop iteration.

Passes are not bounded here: every object keeps its own timing, as a daemon did, and what a pass
spends is bounded where it is spent (platform slots per host, the account budgets, Secret reads).
A bounded worker pool would let one tenant's hanging platform hold every worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connector_operator.engine.wakeups import Key

logger = logging.getLogger(__name__)

Pass = Callable[[Key], Awaitable[float]]
"""One pass over an object; returns the seconds until the next one is due (math.inf: none)."""


@dataclass(eq=False, slots=True)
class Slot:
    timer: asyncio.TimerHandle | None = None
    running: asyncio.Task[None] | None = None
    again: bool = False  # woken while a pass ran: one more pass right after it
    deferred: bool = False  # due while paused: runs at `resume`
    closed: bool = False  # being deleted or forgotten: no more passes
    idle: asyncio.Event | None = None  # made by `wait_idle`, set when no pass runs any more


class Scheduler:
    def __init__(self, run: Pass, *, failure_delay: float) -> None:
        self._run = run
        self._failure_delay = failure_delay  # after a pass raised (a bug)
        self._slots: dict[Key, Slot] = {}
        # Slots forgotten while their pass still ran (the object deleted, maybe created again
        # under its name): a new slot's pass waits for that one, so one name never has two.
        self._draining: dict[Key, Slot] = {}
        self._paused = False
        self._stopping = False
        # The context passes and timers run in: the first caller's (kopf's watch handler, whose
        # context has kopf's Event-posting variables), kept once. A task or timer copies its
        # creator's context otherwise, and a watch handler's holds kopf's cause with the whole
        # event's body: each object would keep its last event alive through its timer.
        self._context: contextvars.Context | None = None

    def __contains__(self, key: Key) -> bool:
        return key in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def paused(self) -> bool:
        return self._paused

    def track(self, key: Key) -> None:
        """Start scheduling `key`, with a pass now."""
        if key not in self._slots:
            self._slots[key] = Slot()
            self.wake(key)

    def wake(self, key: Key) -> None:
        """A pass for `key` now (after the running one, if any); unknown keys are ignored."""
        slot = self._slots.get(key)
        if slot is None or slot.closed or self._stopping:
            return
        if slot.running is not None or key in self._draining:
            slot.again = True
            return
        if self._paused:
            slot.deferred = True
            return
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        slot.running = asyncio.create_task(
            self._pass(key, slot), name=f"pass:{key[0]}/{key[1]}", context=self._base().copy()
        )

    def close(self, key: Key) -> None:
        """No more passes for `key` (it is being deleted); one that runs is let finish."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.closed = True
            self._cancel_timer(slot)

    def forget(self, key: Key) -> None:
        """`key` is gone; a pass that still runs ends on its own, before any other of that name."""
        slot = self._slots.pop(key, None)
        if slot is not None:
            slot.closed = True
            self._cancel_timer(slot)
            if slot.running is not None:
                self._draining[key] = slot

    def running(self, key: Key) -> bool:
        slot = self._slots.get(key)
        return (slot is not None and slot.running is not None) or key in self._draining

    def scheduled(self, key: Key) -> bool:
        """Whether a timer will start a pass for `key`."""
        slot = self._slots.get(key)
        return slot is not None and slot.timer is not None

    async def wait_idle(self, key: Key, timeout: float) -> bool:
        """Whether no pass for `key` runs (waiting up to `timeout` for the one that does)."""
        slot = self._draining.get(key) or self._slots.get(key)
        if slot is None or slot.running is None:
            return True
        if slot.idle is None:
            slot.idle = asyncio.Event()
        try:
            await asyncio.wait_for(slot.idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def pause(self) -> None:
        """Start no pass until `resume` (another copy of the operator works: peering)."""
        self._paused = True
        for slot in self._slots.values():
            if slot.timer is not None:
                self._cancel_timer(slot)
                slot.deferred = True

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        for key, slot in list(self._slots.items()):
            if slot.deferred:
                slot.deferred = False
                self.wake(key)

    def halt(self) -> None:
        """Start no more passes (the operator is asked to stop): from here on another copy may work."""
        self._stopping = True
        for slot in self._slots.values():
            self._cancel_timer(slot)

    async def stop(self, timeout: float) -> None:
        """Start no more passes; let the running ones finish within `timeout`, then cancel them."""
        self.halt()
        slots = [*self._slots.values(), *self._draining.values()]
        tasks = [slot.running for slot in slots if slot.running is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _pass(self, key: Key, slot: Slot) -> None:
        delay = math.inf
        try:
            delay = await self._run(key)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug, not a platform or API answer (those are outcomes): log, retry later
            logger.exception("pass over %s/%s failed; again in %.0fs", key[0], key[1], self._failure_delay)
            delay = self._failure_delay
        finally:
            slot.running = None
            if slot.idle is not None:
                slot.idle.set()
                slot.idle = None
            if self._draining.get(key) is slot:
                del self._draining[key]
                successor = self._slots.get(key)
                if successor is not None and successor.again:
                    successor.again = False
                    self.wake(key)
        if slot.closed or self._stopping:
            return
        if slot.again:
            slot.again = False
            self.wake(key)
        elif self._paused:
            slot.deferred = True
        elif math.isfinite(delay):
            slot.timer = asyncio.get_running_loop().call_later(
                max(0.0, delay), self._due, key, slot, context=self._base()
            )

    def _due(self, key: Key, slot: Slot) -> None:
        slot.timer = None
        if self._slots.get(key) is slot:
            self.wake(key)

    def _base(self) -> contextvars.Context:
        if self._context is None:
            self._context = contextvars.copy_context()
        return self._context

    @staticmethod
    def _cancel_timer(slot: Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
