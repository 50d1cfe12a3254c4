"""Waiting for a Secret the label-filtered watch cannot see, without a connection per waiter.

An object waits for a Secret that does not exist yet (GitOps often applies objects before their
Secrets), or for someone else's Secret in the way of its token Secret. A watch per waiting object
held one pooled connection each for minutes, and four hundred of them starved every other call.
Here all waiters share one metadata-only watch per namespace (one for the whole cluster when the
operator watches every namespace), which runs only while someone waits, and wakes exactly the
objects waiting for the name that changed. Nothing of the other Secrets is kept.

No change is lost between a pass and its wait: the waiter registers, waits until the watch has
its starting point (`watching`), then looks at the Secret once more; the watch reports every
change after that point, and a watch the server ends is resumed where it stopped; after a failed
one every waiter looks again. (Looking before the watch had its starting point lost a change made
in between: an account whose Secret was fixed right after a pass slept until its resync.) An
account daemon, which always needs its Secret, holds its interest across passes (`HeldInterest`)
and looks once, when the interest begins.

Nothing a watch meets may stop it while someone waits, or the waiters hear of their Secrets only
at their next backoff (up to five minutes): one Secret with 4,500 labels made a watch line that
aiohttp refused with an exception the loop did not catch, and the dead task stayed registered.
So an event too large to read is skipped (kube.api.MAX_LINE): its first bytes name the Secret, whose
waiters look again (kube.secrets.watch_names); only one they do not name wakes every waiter of the
scope, since it could have been theirs, and at most once per `UNREAD_WAKE_SECONDS` (any tenant can
write such Secrets in a loop). Any failure short of cancellation is logged, waited out with
backoff, and wakes everyone before the watch resumes; and `interest` replaces a watch task that
ended all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from connector_operator.engine.wakeups import Key, Wakeups
from connector_operator.kube.api import MAX_LINE, KubeError
from connector_operator.kube.secrets import UNREAD, Secrets

logger = logging.getLogger(__name__)

WATCH_SECONDS = 300.0  # the server ends a watch after this; it is then restarted if still needed
RETRY_SECONDS = (1.0, 30.0)  # after a failed watch: first delay, cap
STARTING_SECONDS = 5.0  # how long a waiter waits for a new watch's starting point before it looks
# How often an event too large to read, that its first bytes do not name, may wake every waiter of
# the scope. Any tenant can write one in a loop, and each wake costs every account daemon a GET
# (usually a status write too) and every waiting object a pass (tenant-findings N13). Events in
# between are folded into one wake when the interval ends: a waiter looks again whenever woken, so
# a change among them is seen, at most this late.
UNREAD_WAKE_SECONDS = 10.0


@dataclass
class SecretWaits:
    secrets: Secrets
    wakeups: Wakeups
    clusterwide: bool
    # (namespace, Secret name) -> the objects (namespace, name) waiting for it
    waiting: dict[Key, set[Key]] = field(default_factory=dict)
    watches: dict[str | None, asyncio.Task[None]] = field(default_factory=dict)
    # Set once the scope's watch reports every change from then on (its resourceVersion is known).
    started: dict[str | None, asyncio.Event] = field(default_factory=dict)
    # Per scope: when unreadable events last woke everyone (loop time), and the wake they have due.
    unread_woken_at: dict[str | None, float] = field(default_factory=dict)
    unread_due: dict[str | None, asyncio.TimerHandle] = field(default_factory=dict)

    def _scope(self, namespace: str) -> str | None:
        return None if self.clusterwide else namespace

    @contextlib.contextmanager
    def interest(self, namespace: str, secret: str, waiter: Key) -> Iterator[None]:
        """While inside, a change of `namespace/secret` wakes `waiter`."""
        key = (namespace, secret)
        self.waiting.setdefault(key, set()).add(waiter)
        scope = self._scope(namespace)
        current = self.watches.get(scope)
        if current is None or current.done():
            self.started[scope] = asyncio.Event()
            self.watches[scope] = asyncio.create_task(
                self._watch(scope, self.started[scope]), name=f"secret-waits:{scope or '*'}"
            )
            if current is not None:  # it ended (it should not): what it missed, everyone looks for
                logger.warning("Secret watch for %s ended (%s); restarted", scope or "*", _ending(current))
                self._wake_all(scope)
        try:
            yield
        finally:
            users = self.waiting.get(key, set())
            users.discard(waiter)
            if not users:
                self.waiting.pop(key, None)
            if not any(self._scope(ns) == scope for ns, _ in self.waiting):
                task = self.watches.pop(scope, None)
                self.started.pop(scope, None)
                self._forget_unread(scope)
                if task is not None:
                    task.cancel()

    async def watching(self, namespace: str, timeout: float = STARTING_SECONDS) -> None:
        """Return once the watch covering `namespace` (begun by `interest`) reports every change
        from now on, or after `timeout` (a slow or failing API server: the watch then wakes
        everyone when it starts or fails, so nothing is lost, only later)."""
        started = self.started.get(self._scope(namespace))
        if started is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(started.wait(), timeout)

    async def _watch(self, scope: str | None, started: asyncio.Event) -> None:
        since: str | None = None
        delay = RETRY_SECONDS[0]
        while True:
            try:
                async for version, changed in self.secrets.watch_names(scope, WATCH_SECONDS, since):
                    since, delay = version, RETRY_SECONDS[0]
                    started.set()
                    if changed == UNREAD:
                        logger.debug(
                            "an unnamed Secret event for %s over %d KiB was skipped; all waiters look again",
                            scope or "*",
                            MAX_LINE // 1024,
                        )
                        self._wake_all_unread(scope)
                    for waiter in self.waiting.get(changed, ()) if changed is not None else ():
                        self.wakeups.wake(waiter)
            except Exception as error:  # anything but cancellation, which ends the task
                # The watch is gone and its position may be too (410): start over from now, and
                # let every waiter look again, since changes in between were not seen.
                expected = isinstance(error, KubeError | OSError | ValueError)
                logger.log(
                    logging.DEBUG if expected else logging.WARNING,
                    "Secret watch for %s failed (%s: %s); again in %.0fs",
                    scope or "*", type(error).__name__, str(error)[:200], delay,
                )  # fmt: skip
                since = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_SECONDS[1])
                self._wake_all(scope)

    def _wake_all(self, scope: str | None) -> None:
        for (namespace, _), waiters in list(self.waiting.items()):
            if self._scope(namespace) == scope:
                for waiter in waiters:
                    self.wakeups.wake(waiter)

    def _wake_all_unread(self, scope: str | None) -> None:
        """`_wake_all` for an unreadable event: at once, unless unreadable events woke everyone
        less than `UNREAD_WAKE_SECONDS` ago; then once when that interval ends, for them all."""
        if scope in self.unread_due:
            return  # a wake is due already, after this event: it covers it
        loop = asyncio.get_running_loop()
        last = self.unread_woken_at.get(scope)
        wait = 0.0 if last is None else last + UNREAD_WAKE_SECONDS - loop.time()
        if wait > 0:
            self.unread_due[scope] = loop.call_later(wait, self._unread_wake, scope)
        else:
            self._unread_wake(scope)

    def _unread_wake(self, scope: str | None) -> None:
        self.unread_due.pop(scope, None)
        self.unread_woken_at[scope] = asyncio.get_running_loop().time()
        self._wake_all(scope)

    def _forget_unread(self, scope: str | None) -> None:
        """The scope has no waiters left: nobody to wake."""
        due = self.unread_due.pop(scope, None)
        if due is not None:
            due.cancel()
        self.unread_woken_at.pop(scope, None)

    async def close(self) -> None:
        for scope in list(self.unread_due):
            self._forget_unread(scope)
        tasks = list(self.watches.values())
        self.watches.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class HeldInterest:
    """One waiter's interest in one Secret, held across its passes, so that a change during a
    pass wakes its next sleep; moved when the waiter names another Secret (an account daemon)."""

    def __init__(self, waits: SecretWaits, waiter: Key) -> None:
        self._waits, self._waiter = waits, waiter
        self._held: Key | None = None
        self._stack = contextlib.ExitStack()

    async def follow(self, secret: Key | None, fingerprint: str | None) -> bool:
        """Hold the interest in `secret`. True when the interest is new and the Secret no longer
        has `fingerprint` (what the pass read): a change before the watch had its starting point,
        which the watch cannot report."""
        if secret == self._held:
            return False
        self.close()
        if secret is None:
            return False
        self._held = secret
        self._stack.enter_context(self._waits.interest(*secret, self._waiter))
        await self._waits.watching(secret[0])
        try:
            view = await self._waits.secrets.read(*secret)
        except KubeError:
            return False  # a failed look is no news: sleep, no hot loop
        return (view.fingerprint if view is not None else None) != fingerprint

    def close(self) -> None:
        self._stack.close()
        self._stack, self._held = contextlib.ExitStack(), None


def _ending(task: asyncio.Task[None]) -> str:
    """How a watch task ended, for the log (retrieving its exception, which is then not reported
    again as never retrieved)."""
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return type(error).__name__ if error is not None else "returned"
