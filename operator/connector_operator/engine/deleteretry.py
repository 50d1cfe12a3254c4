"""When a failed delete runs again: at once on a spec change, when the platform answers again, and
once at the start of an operator process; otherwise after its own backoff.

kopf retries a failing delete handler after the delay it raised (our backoff, up to five minutes),
and records it as `delayed` in the handler's progress record, `status.kopf.progress.<handler id>`.
Events in between do not shorten it: kopf finds the handler still asleep and sleeps on. So a user
who released a blocked object with `deletionPolicy: Orphan`, or fixed its spec, waited for the
rest of the delay (60-100 s were seen).

Two designs were possible. The delete handler could retry every second and re-check only cheap
local conditions between its platform attempts; but every kopf retry writes the progress record,
so a blocked object would cost a status write (and a watch event) per second, forever. Instead,
when an object being deleted shows a new generation (only a spec change makes one; status writes
and kopf's bookkeeping do not), one status patch removes `delayed` from the record: the watch event
of that patch starts kopf's next cycle, which finds the handler awake and runs it now. A blocked
object stays quiet (no write, no platform call until its delay ends), and a spec change costs one
extra status write. Within one operator process, each generation does this at most once.

The same patch serves three more cases:

- **Its own backoff.** kopf's `retry` count is persisted and counts every failure, 429s answered
  with `Retry-After` included: eight of them and one 503 made the next delay 150-300 s. So the
  delay comes from this module's own count of failures per object, which a failure waited out as
  the platform asked (an outcome with `retry_after`) does not increase, and a success forgets.
- **The platform answers again.** A deletion that failed on the platform (5xx, timeout, network)
  waits for its host and credentials. The client tells of every call answered with success
  (`InstancesClient.on_success`, registered in reconciler/assemble.py); the deletions waiting for
  that host and credentials run now instead of waiting out their delay. An early run that fails
  again does not wait for the platform a second time, only its delay: one extra attempt per
  backoff period at most, so an instance that alone keeps failing (while other calls succeed)
  cannot loop at the pace of other objects' calls.
- **A restarted operator.** kopf keeps the delay in the object and a new process honours it, up
  to five minutes of a delay computed from what the previous process saw. At the first sight of
  a waiting deletion, a process runs it once; after that its own backoff (counted anew) applies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.meta import Meta
from connector_operator.domain.outcome import Kind, Outcome
from connector_operator.engine.retries import Retries
from connector_operator.engine.wakeups import Key
from connector_operator.kube.api import KubeError
from connector_operator.kube.status import StatusWriter
from connector_operator.openconnectors.client import Credentials

logger = logging.getLogger(__name__)

# kopf's handler id for our delete handler (handlers/instances.py names it explicitly), and where
# kopf keeps handler progress (handlers/setup.py configures it): `status.kopf.progress`.
DELETE_HANDLER = "delete_instance"
PROGRESS_FIELD = ("status", "kopf", "progress")

Platform = tuple[str, Credentials]  # (host as client.host_of gives it, the account secrets)


@dataclass(eq=False)
class Attempt:
    """One deletion's work on the platform, run apart from kopf's handler (issue 20).

    kopf handles one object's events one at a time: while its delete handler runs, no event of
    the object is even looked at, so a `deletionPolicy: Orphan` patch waited for every call of
    a Delete attempt (a slot wait, then up to the request deadline, per call). The handler
    now waits for its attempt a moment only, and kopf's worker is free again: the spec change
    reaches `on_event` and the next run of the handler, which can withdraw the attempt."""

    uid: str  # of the object: one created again under its name never takes this one's outcome
    generation: int  # of the spec the attempt works from
    task: asyncio.Task[Any]
    awaited: int = 0  # runs of the handler waiting for it right now
    sending: int | None = None  # an instance whose DELETE is sent and not answered yet

    async def within(self, seconds: float) -> bool:
        """Whether the attempt ended, waiting up to `seconds` for it (never cancelling it)."""
        self.awaited += 1
        try:
            await asyncio.wait({self.task}, timeout=seconds)
        finally:
            self.awaited -= 1
        return self.task.done()


@dataclass
class DeleteRetries:
    # Per object: failures counted for the backoff, by the one rule (engine/retries.py).
    retries: Retries[Key]
    # Per object being deleted: the last generation seen (in this process).
    seen: dict[Key, int] = field(default_factory=dict)
    # Deletions that failed on the platform, by the host and credentials they wait for.
    waiting: dict[Platform, set[Key]] = field(default_factory=dict)
    # Deletions run early because their platform answered, until that run's outcome.
    early: set[Key] = field(default_factory=set)
    # Per object being deleted under Delete: its attempt on the platform, until the handler takes
    # its outcome (or a policy change withdraws it).
    attempts: dict[Key, Attempt] = field(default_factory=dict)
    _tasks: set[asyncio.Task[bool]] = field(default_factory=set, repr=False)

    def forget(self, key: Key) -> None:
        self.seen.pop(key, None)
        self.succeeded(key)
        attempt = self.attempts.pop(key, None)
        if attempt is not None:
            attempt.task.cancel()

    async def close(self) -> None:
        """The operator stops: attempts and early runs end before the clients they use close (the
        next process searches again, so nothing is lost)."""
        running = [attempt.task for attempt in self.attempts.values()] + list(self._tasks)
        self.attempts.clear()
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    def gone(self, key: Key, uid: str) -> None:
        """The object `uid` is gone: its attempt, if any, ends (whatever the name holds now)."""
        attempt = self.attempts.get(key)
        if attempt is not None and attempt.uid == uid:
            del self.attempts[key]
            attempt.task.cancel()

    def attempt(
        self, status: StatusWriter, key: Key, at: tuple[str, int], start: Callable[[], Awaitable[Any]]
    ) -> Attempt:
        """The attempt of the object `at` = (uid, generation): the one running (or ended and not
        yet taken), or a new one. One made for another object of the name (deleted and created
        again), or from an older spec, is cancelled first."""
        uid, generation = at
        current = self.attempts.get(key)
        if current is not None and (current.uid, current.generation) == at:
            return current
        if current is not None:
            current.task.cancel()
        task = asyncio.ensure_future(start())
        attempt = self.attempts[key] = Attempt(uid, generation, task)
        task.add_done_callback(lambda _: self._ended(status, key, attempt))
        return attempt

    def take(self, key: Key, attempt: Attempt) -> Any:
        """The outcome of an attempt that ended (its exception raised); it is forgotten."""
        if self.attempts.get(key) is attempt:
            del self.attempts[key]
        return attempt.task.result()

    def finished(self, key: Key) -> bool:
        attempt = self.attempts.get(key)
        return attempt is not None and attempt.task.done()

    async def withdraw(self, key: Key) -> tuple[Any, int | None]:
        """End the object's attempt (the policy changed): (its outcome if it had ended, else None;
        an instance whose DELETE was in flight, which may be deleted all the same)."""
        attempt = self.attempts.pop(key, None)
        if attempt is None:
            return None, None
        if attempt.task.done():
            ended = not attempt.task.cancelled() and attempt.task.exception() is None
            return (attempt.task.result() if ended else None), None
        attempt.task.cancel()
        await asyncio.wait({attempt.task})  # our awaits end at once when cancelled
        return None, attempt.sending

    def sending(self, key: Key, instance_id: int | None) -> None:
        """The attempt sends (or got the answer to, with None) a DELETE of `instance_id`."""
        attempt = self.attempts.get(key)
        if attempt is not None:
            attempt.sending = instance_id

    def _ended(self, status: StatusWriter, key: Key, attempt: Attempt) -> None:
        """An attempt ended while no run of the handler waited for it: run the handler now (kopf
        sleeps out its delay otherwise). Should kopf's own progress patch land after this one,
        `on_event` sees the ended attempt and does it again."""
        if attempt.awaited or attempt.task.cancelled() or self.attempts.get(key) is not attempt:
            return
        task = asyncio.ensure_future(self.run_now(status, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_event(self, status: StatusWriter, key: Key, body: Mapping[str, Any]) -> bool:
        """For an event of an object being deleted: wake its delete handler when the spec changed
        since the handler last judged it, or when this process sees it waiting for the first time.
        True when it did."""
        generation = Meta.of(body).generation
        first = key not in self.seen
        # At first sight (deletion just started, or the operator restarted): the generation the
        # delete handler last reported on, which its conditions carry.
        previous = self.seen.get(key, judged_generation(body))
        self.seen[key] = generation
        if not delayed(body):
            return False
        if generation == previous and not first and not self.finished(key):
            return False
        return await self.run_now(status, key)

    async def run_now(self, status: StatusWriter, key: Key) -> bool:
        """End the delay of the object's delete handler: kopf runs it on the patch's watch event.
        Only for an object whose handler failed (kopf then has a progress record for it)."""
        patch = {PROGRESS_FIELD[1]: {PROGRESS_FIELD[2]: {DELETE_HANDLER: {"delayed": None}}}}
        try:
            await status.patch(key[0], key[1], patch)
        except KubeError as error:  # no worse than before: the retry comes when the delay ends
            logger.warning("could not retry the deletion of %s/%s now: HTTP %s", *key, error.status)
            return False
        return True

    def attempting(self, key: Key) -> None:
        """The delete handler runs: it waits for nothing until its outcome is known."""
        for platform in list(self.waiting):
            self.waiting[platform].discard(key)
            if not self.waiting[platform]:
                del self.waiting[platform]

    def failed(self, key: Key, outcome: Outcome, platform: Platform | None = None) -> float:
        """The delay before the next attempt (engine/retries.py: a wait the platform asked for is
        no failure). A transient failure on `platform` also waits for it to answer, unless this
        attempt was already an early one."""
        delay = self.retries.failed(key, outcome)
        was_early = key in self.early
        self.early.discard(key)
        if (
            platform is not None
            and outcome.kind is Kind.RETRYING
            and outcome.retry_after is None
            and not was_early
        ):
            self.waiting.setdefault(platform, set()).add(key)
        return delay

    def succeeded(self, key: Key) -> None:
        self.retries.succeeded(key)
        self.early.discard(key)
        self.attempting(key)

    def platform_answered(self, status: StatusWriter, platform: Platform) -> None:
        """A call to `platform` succeeded: run the deletions waiting for it now. Called by the
        client for every successful call, so it must be cheap when nobody waits."""
        keys = self.waiting.pop(platform, None)
        for key in keys or ():
            self.early.add(key)
            task = asyncio.ensure_future(self.run_now(status, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def judged_generation(body: Mapping[str, Any]) -> int:
    """The newest generation the conditions describe; the current one when there are none."""
    status = body.get("status") or {}
    generations = [int(c.get("observedGeneration") or 0) for c in status.get("conditions") or []]
    return max(generations, default=Meta.of(body).generation)


def delayed(body: Mapping[str, Any]) -> bool:
    """Whether the delete handler waits for a retry (not finished, `delayed` set)."""
    record: Any = body
    for part in (*PROGRESS_FIELD, DELETE_HANDLER):
        record = record.get(part) if isinstance(record, Mapping) else None
    if not isinstance(record, Mapping):
        return False
    return bool(record.get("delayed")) and not record.get("success") and not record.get("failure")
