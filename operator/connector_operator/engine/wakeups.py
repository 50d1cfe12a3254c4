"""Cutting a wait short: a pass now for a ConnectorInstance (engine/scheduler.py), or the
asyncio.Event of an account's daemon, set by the watches.

Passes run on a schedule we choose; a spec change or a Secret change must not wait for it. The
registry also remembers what each Secret last looked like, so that an event which
changes nothing (our own label appearing, a resync) wakes nobody.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Wakeups:
    """One asyncio.Event per running account daemon, the scheduler's wake-up for every other key,
    and the last generation each object has been woken for."""

    events: dict[Key, asyncio.Event] = field(default_factory=dict)
    fallback: Callable[[Key], None] | None = None  # keys without an Event: the scheduler's objects
    # What each object was last woken for: the generation and the day-2 annotations.
    generations: dict[Key, tuple[object, ...]] = field(default_factory=dict)
    # Content fingerprints of the Secrets in use: a Secret event wakes its users only when the
    # content changed, not when the operator's own label made it appear in the watch.
    secret_fingerprints: dict[Key, str | None] = field(default_factory=dict)
    secret_changed_at: dict[Key, float] = field(default_factory=dict)  # monotonic, after the first sight

    def register(self, key: Key) -> asyncio.Event:
        return self.events.setdefault(key, asyncio.Event())

    def unregister(self, key: Key) -> None:
        self.events.pop(key, None)
        self.generations.pop(key, None)

    def wake(self, key: Key) -> None:
        event = self.events.get(key)
        if event is not None:
            event.set()
        elif self.fallback is not None:
            self.fallback(key)

    def forget(self, key: Key) -> None:
        """The object `key` is gone."""
        self.generations.pop(key, None)

    def observe_generation(self, key: Key, marks: tuple[object, ...], deleting: bool) -> None:
        """Wake the object only when the spec (the generation) or one of the annotations its passes
        read changed, `marks`: our own status writes must not wake it."""
        if deleting or self.generations.get(key) != marks:
            self.generations[key] = marks
            self.wake(key)

    def secret_changed(self, key: Key, fingerprint: str | None) -> bool:
        """Record a Secret's content (None: deleted); True when it differs from what was seen."""
        changed = key not in self.secret_fingerprints or self.secret_fingerprints[key] != fingerprint
        if changed and key in self.secret_fingerprints:  # a change, not the first sight
            self.secret_changed_at[key] = time.monotonic()
        self.secret_fingerprints[key] = fingerprint
        return changed

    def changed_recently(self, key: Key, within: float) -> bool:
        """Whether the Secret's content changed in the last `within` seconds (a rotation)."""
        at = self.secret_changed_at.get(key)
        return at is not None and time.monotonic() - at < within


class Waitable(Protocol):
    def wait(self) -> Awaitable[Any]: ...


async def sleep_until(delay: float, *signals: Waitable) -> None:
    """Sleep for `delay` seconds or until any of `signals` (a wake-up event, kopf's stop flag)."""
    waiters = [asyncio.ensure_future(signal.wait()) for signal in signals]
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
