"""The passes of one ConnectorInstance: its record from the watch events, and one pass over it.

The rules are level-based (compare desired with last applied, re-check the platform now and then,
react to Secret changes), so each object gets passes, not per-event handlers: a pass right after a
change, backoff with jitter on failures (engine/retries.py), `Retry-After` when the platform says
so, and silence when nothing changed. The passes were a kopf daemon per object; they are run by
our scheduler (engine/scheduler.py) from what the watch events tell `changed` (a `Tracked` record
per object), because a daemon kept about 45 KiB per object alive at rest.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Mapping
from typing import Any

from connector_operator import logcontext, metrics
from connector_operator.api.meta import Meta
from connector_operator.api.names import FINALIZER
from connector_operator.api.spec import MAX_RESYNC, MIN_RESYNC, parse_duration
from connector_operator.api.status import Reason
from connector_operator.domain.outcome import Kind, Outcome, retrying
from connector_operator.domain.transition import parse_status
from connector_operator.engine.accounts import waiter
from connector_operator.engine.objects import (
    ObjectState,
    Target,
    Tracked,
    object_ref,
    spec_for_pass,
    tracked_from,
)
from connector_operator.engine.secretholds import Users
from connector_operator.kube.api import KubeError
from connector_operator.kube.finalizers import add_finalizer, read_instance
from connector_operator.kube.secrets import SecretMeta
from connector_operator.reconciler.reconcile import Awaited, reconcile
from connector_operator.reconciler.runtime import Key, Runtime
from connector_operator.reconciler.series import observe_instance

logger = logging.getLogger(__name__)

MIN_RESYNC_SECONDS, MAX_RESYNC_SECONDS = parse_duration(MIN_RESYNC), parse_duration(MAX_RESYNC)
RESEED_WAIT = 5.0


async def changed(
    runtime: Runtime,
    key: Key,
    event_type: str | None,
    body: Mapping[str, Any],
    users: Users,
    cache: Mapping[Key, SecretMeta],
) -> None:
    """What one watch event of a ConnectorInstance changes: its record (and its passes' wake-ups),
    the Secrets it holds, and a waiting deletion. `users` is kopf's `secret_users` index, which
    kopf has updated (or forgotten the object in) before the event reaches us."""
    meta = Meta.of(body)
    tracked = runtime.tracked.get(key)
    # The records first, the awaited Secret releases after: a failed release must lose no wake-up.
    if event_type == "DELETED":
        runtime.creations.forget(meta.uid)
        runtime.delete_retries.gone(key, meta.uid)
        # kopf handles each uid on a worker of its own: the end of an object deleted and created
        # again under its name may come after the new one's first events.
        if tracked is None or tracked.uid == meta.uid:
            forget(runtime, key)
            runtime.delete_retries.forget(key)
            gone = runtime.accounts.users.pop(key, None)
            if gone is not None:  # its account's status (instances, usedBy) and deletion follow
                runtime.wakeups.wake(waiter(gone[0]))
    else:
        _observed(runtime, key, body, tracked)
    # kopf has re-indexed the object (or forgotten it) before calling us: safe to release.
    await runtime.holds.references_changed(key, event_type, body, users, cache)
    if meta.deleting and event_type != "DELETED":
        await runtime.delete_retries.on_event(runtime.status, key, body)


def _observed(runtime: Runtime, key: Key, body: Mapping[str, Any], tracked: Tracked | None) -> None:
    """Record what an event says of an object that exists, and wake its passes if it matters."""
    meta = Meta.of(body)
    deleting = meta.deleting
    if tracked is not None and tracked.uid != meta.uid:
        if deleting:  # a late event of the object before, which was gone when this one was made
            return
        forget(runtime, key)  # deleted and created again under the same name between two events
        tracked = None
    observe_instance(key, body, runtime.readiness)
    if tracked is None:
        tracked = runtime.tracked[key] = tracked_from(body, runtime.settings.resync_interval)
    elif tracked.reseed and not runtime.scheduler.running(key):
        _seed(runtime, key, tracked, body)
        runtime.scheduler.wake(key)
    tracked.observe(body)
    # A spec change, or a change of the pause or reconcile-now annotations, wakes the object; our
    # own status writes change none of these and wake nobody.
    marks = (tracked.generation, *tracked.annotations, tracked.take_over)
    runtime.wakeups.observe_generation(key, marks, deleting)
    if deleting:
        runtime.scheduler.close(key)
        metrics.OBJECTS.forget(key)  # deletion is underway: no verdict of its passes stands
    elif key not in runtime.scheduler:
        runtime.scheduler.track(key)


def forget(runtime: Runtime, key: Key) -> None:
    """Everything the process keeps of an object's passes, dropped."""
    runtime.scheduler.forget(key)
    runtime.retries.succeeded(key)
    tracked = runtime.tracked.pop(key, None)
    if tracked is not None and tracked.waiting is not None:
        tracked.waiting.close()
    runtime.wakeups.forget(key)
    metrics.OBJECTS.forget(key)
    metrics.SERIES.forget_instance(key)
    runtime.readiness.forget(key)


def outranked(runtime: Runtime, yes: bool) -> None:
    """Another copy of the operator outranks this one (peering), or no longer does: pause the
    passes, or resume them."""
    if yes:
        # Outranked, this copy sees no events, so its series would not follow the objects: the
        # other copy exports them. (Also when already paused: a copy may start outranked.)
        metrics.SERIES.clear()
        metrics.OBJECTS.clear()
        runtime.readiness.pending.clear()
    if yes and not runtime.scheduler.paused:
        logger.info("another copy of the operator outranks this one: passes paused")
        runtime.scheduler.pause()
        # What the other copy creates meanwhile, this copy's listings do not show: list again.
        runtime.creations.forget_listings()
        # Nor does what the passes remember show the status it writes: kopf lists every object
        # again when it resumes, and that status is taken as it is (engine/objects.py).
        for tracked in runtime.tracked.values():
            tracked.reseed = True
    elif not yes and runtime.scheduler.paused:
        logger.info("no copy of the operator outranks this one: passes resumed")
        runtime.scheduler.resume()


async def run_pass(runtime: Runtime, key: Key) -> float:
    """One pass over the object `key`; the seconds until the next one is due."""
    tracked = runtime.tracked.get(key)
    if tracked is None or tracked.deleting:
        return math.inf
    if tracked.reseed and not await _reseed(runtime, key, tracked):
        return math.inf if key not in runtime.tracked else RESEED_WAIT
    if tracked.waiting is not None:  # this pass looks itself: the interest ends here
        tracked.waiting.close()
        tracked.waiting = None
    logcontext.bind(key[0], key[1], tracked.uid)
    state = tracked.thaw()
    try:
        return await _pass(runtime, key, tracked, state)
    finally:
        tracked.park()


async def _pass(runtime: Runtime, key: Key, tracked: Tracked, state: ObjectState) -> float:
    namespace, name = key
    settings = runtime.settings
    paused, request = tracked.annotations
    # A new reconcile-requested-at value asks for a platform check now (as Flux's requestedAt).
    requested = request is not None and request != state.status.last_handled_reconcile_at
    due = time.monotonic() >= tracked.next_check or (requested and not paused)
    try:
        read = await spec_for_pass(tracked, runtime.kube, key)  # a big spec is not kept: read again
    except KubeError as error:  # retried with backoff, as a pass that failed
        logger.warning("%s/%s not read: HTTP %s", namespace, name, error.status)
        message = f"The object could not be read: HTTP {error.status}"
        return runtime.retries.failed(key, retrying(Reason.KUBERNETES_ERROR, message, ready=state.ready))
    if read is None:
        return math.inf  # gone, or made again: its events come
    generation, spec = read
    target = Target(
        namespace,
        name,
        tracked.uid,
        generation,
        spec,
        paused=paused,
        reconcile_request=request,
        take_over=tracked.take_over,
    )
    started = time.monotonic()
    state.retry_delay = None
    cache = runtime.secret_index if runtime.secret_index is not None else {}
    result = await reconcile(runtime, target, state, cache, remote_due=due)
    if state.written.instance_id is not None:  # the API server has it: nothing to remember
        runtime.creations.recorded(tracked.uid, state.written.instance_id)
    if state.events:
        _post_events(runtime, key, tracked.uid, state)
    if runtime.tracked.get(key) is not tracked:  # deleted meanwhile (and maybe made again)
        if key not in runtime.tracked:
            runtime.retries.succeeded(key)  # the failure its status write counted goes with it
        return math.inf
    _observe(key, result.outcome, time.monotonic() - started)
    if result.outcome.kind is Kind.RETRYING:
        # Counted by the status write (its nextAttemptAt), or here for a pass that wrote none. A
        # wait the platform asked for (Retry-After) or the account's gate set is not a failure of
        # ours: the backoff after the next real failure must not have grown (engine/retries.py).
        delay = (
            state.retry_delay
            if state.retry_delay is not None
            else runtime.retries.failed(key, result.outcome)
        )
    else:
        runtime.retries.succeeded(key)
        if due:
            resync = resync_interval(spec, settings.resync_interval)
            tracked.next_check = time.monotonic() + resync * random.uniform(0.9, 1.1)
        delay = max(0.0, tracked.next_check - time.monotonic())
    delay = min(delay, await _finalized(runtime, key, tracked))
    if result.awaited is not None and await _await_secret(runtime, key, tracked, result.awaited):
        return 0.0
    return delay


def _post_events(runtime: Runtime, key: Key, uid: str, state: ObjectState) -> None:
    runtime.events(object_ref(*key, uid), list(state.events))
    for _, reason, _ in state.events:
        if reason == Reason.DRIFT_CORRECTED:
            metrics.SERIES.drift_corrected(key)
    state.events.clear()


async def _reseed(runtime: Runtime, key: Key, tracked: Tracked) -> bool:
    """After a peering pause: read the object as the other copy left it (its status is what the
    passes go on from), or forget it if it is gone. False: not now (no object, or no answer)."""
    if runtime.kube is None:
        return False
    namespace, name = key
    try:
        raw = await read_instance(runtime.kube, namespace, name)
    except KubeError:
        return False
    if raw is None or Meta.of(raw).uid != tracked.uid:
        forget(runtime, key)  # deleted while paused: kopf's listing after the pause does not say so
        return False
    _seed(runtime, key, tracked, raw)
    tracked.observe(raw)
    return True


def _seed(runtime: Runtime, key: Key, tracked: Tracked, body: Mapping[str, Any]) -> None:
    """Go on from the status another copy left (peering): its memory, and its failures, not ours."""
    tracked.seed(parse_status(body.get("status")))
    runtime.retries.succeeded(key)


async def _await_secret(runtime: Runtime, key: Key, tracked: Tracked, awaited: Awaited) -> bool:
    """Watch the Secret the pass waits for until the next pass; whether it already moved."""
    namespace = key[0]
    waiting = contextlib.ExitStack()
    waiting.enter_context(runtime.waits.interest(namespace, awaited.name, key))
    tracked.waiting = waiting
    await runtime.waits.watching(namespace)
    return await _moved_since_the_pass(runtime, namespace, awaited)


def resync_interval(spec: Any, default: float) -> float:
    """The object's spec.resyncInterval in seconds, else the operator's (the CRD checks its bounds)."""
    raw = spec.get("resyncInterval") if isinstance(spec, dict) else None
    if not isinstance(raw, str):
        return default
    try:
        seconds = parse_duration(raw)
    except ValueError:
        return default
    return min(max(seconds, MIN_RESYNC_SECONDS), MAX_RESYNC_SECONDS)


# kopf adds its finalizer within milliseconds of first seeing an object; one still missing after
# this long is a patch kopf lost (kube/finalizers.py).
FINALIZER_GRACE = 10.0


async def _finalized(runtime: Runtime, key: Key, tracked: Tracked) -> float:
    """Put back a finalizer kopf lost; how long the object may wait before its next look."""
    if FINALIZER in tracked.finalizers or tracked.deleting or runtime.kube is None:
        return math.inf
    age = time.monotonic() - tracked.born
    if age < FINALIZER_GRACE:
        return FINALIZER_GRACE - age
    namespace, name = key
    try:
        await add_finalizer(
            runtime.kube, namespace, name, FINALIZER, list(tracked.finalizers), tracked.resource_version
        )
    except KubeError as error:  # a 409: it changed meanwhile, and the next look sees it as it is now
        logger.info("finalizer not added to %s/%s: HTTP %s", namespace, name, error.status)
        return runtime.settings.backoff_base
    logger.warning("kopf's finalizer was missing on %s/%s: added it", namespace, name)
    return math.inf


def _observe(key: tuple[str, str], outcome: Outcome, seconds: float) -> None:
    result = outcome.kind.value
    metrics.RECONCILES.labels(result).inc()
    metrics.RECONCILE_SECONDS.labels(result).observe(seconds)
    metrics.OBJECTS.set(key, outcome.ready, outcome.reason.value)
    if outcome.kind is Kind.RETRYING:
        metrics.RETRIES.labels(outcome.reason.value).inc()
        if outcome.retry_after is not None:
            metrics.RATE_LIMIT_WAIT.inc(outcome.retry_after)


async def _moved_since_the_pass(runtime: Runtime, namespace: str, awaited: Awaited) -> bool:
    """Whether the awaited Secret appeared (or went) between the pass and the start of the watch
    above, which the watch cannot report. A failed look is no news: sleep, no hot loop."""
    try:
        exists = await runtime.secrets.read(namespace, awaited.name) is not None
    except KubeError:
        return False
    return exists != awaited.existed
