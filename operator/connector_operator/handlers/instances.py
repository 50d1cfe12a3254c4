"""kopf handlers for ConnectorInstance, and the pass that reconciles one.

The rules are level-based (compare desired with last applied, re-check the platform now and then,
react to Secret changes), so each object gets passes, not per-event handlers: a pass right after a
change, backoff with jitter on failures, `Retry-After` when the platform says so, and silence when
nothing changed. The passes were a kopf daemon per object; they are now run by our scheduler
(handlers/scheduler.py) from what the watch events tell `instance_changed` (a `Tracked` record per
object), because a daemon kept about 45 KiB per object alive at rest. kopf still provides the
watching, the finalizer, and retries of the delete handler.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from typing import Any, cast

import kopf
from pydantic import ValidationError

from connector_operator import logcontext, metrics
from connector_operator.api.names import (
    FINALIZER,
    GROUP,
    PLURAL,
    VERSION,
)
from connector_operator.api.spec import (
    MAX_RESYNC,
    MIN_RESYNC,
    DeletionPolicy,
    effective_token_secret,
    observe_only,
    parse_duration,
    parse_spec,
)
from connector_operator.domain.outcome import Kind, Outcome, bounded
from connector_operator.domain.transition import parse_status
from connector_operator.handlers import deletion
from connector_operator.handlers.accountstate import waiter
from connector_operator.handlers.deleteretry import DELETE_HANDLER
from connector_operator.handlers.liveobjects import LiveObjects
from connector_operator.handlers.reconcile import Awaited, reconcile
from connector_operator.handlers.runtime import Runtime
from connector_operator.handlers.state import Key, ObjectState, Target, Tracked, object_ref, tracked_from
from connector_operator.handlers.watch import secret_view_cache
from connector_operator.kube.api import KubeError
from connector_operator.kube.finalizers import add_finalizer, read_instance

logger = logging.getLogger(__name__)

RESOURCE = (GROUP, VERSION, PLURAL)
MIN_RESYNC_SECONDS, MAX_RESYNC_SECONDS = parse_duration(MIN_RESYNC), parse_duration(MAX_RESYNC)
RESEED_WAIT = 5.0


@kopf.on.event(*RESOURCE)  # type: ignore[arg-type]
async def instance_changed(
    namespace: str,
    name: str,
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_users: kopf.Index[tuple[str, str], str],
    secret_cache: kopf.Index[tuple[str, str], Any],
    instance_refs: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    if runtime.secret_index is None:  # kopf's index objects live as long as the operator
        runtime.secret_index = secret_view_cache(secret_cache)
        runtime.live = LiveObjects(instance_refs)
    key = (namespace, name)
    meta = body.get("metadata", {})
    uid = str(meta.get("uid", ""))
    deleting = meta.get("deletionTimestamp") is not None
    tracked = runtime.tracked.get(key)
    # The records first, the awaited Secret releases after: a failed release must lose no wake-up.
    if type == "DELETED":
        runtime.creations.forget(uid)
        # kopf handles each uid on a worker of its own: the end of an object deleted and created
        # again under its name may come after the new one's first events.
        if tracked is None or tracked.uid == uid:
            forget(runtime, key)
            runtime.delete_retries.forget(key)
            gone = runtime.accounts.users.pop(key, None)
            if gone is not None:  # its account's status (instances, usedBy) and deletion follow
                runtime.wakeups.wake(waiter(gone[0]))
    else:
        _observed(runtime, key, body, tracked)
    # kopf has re-indexed the object (or forgotten it) before calling us: safe to release.
    await runtime.holds.references_changed(key, type, body, secret_users, secret_view_cache(secret_cache))
    if deleting and type != "DELETED":
        await runtime.delete_retries.on_event(runtime.status, key, body)


def _observed(runtime: Runtime, key: Key, body: kopf.Body, tracked: Tracked | None) -> None:
    """Record what an event says of an object that exists, and wake its passes if it matters."""
    meta = body.get("metadata", {})
    deleting = meta.get("deletionTimestamp") is not None
    if tracked is not None and tracked.uid != str(meta.get("uid", "")):
        if deleting:  # a late event of the object before, which was gone when this one was made
            return
        forget(runtime, key)  # deleted and created again under the same name between two events
        tracked = None
    if tracked is None:
        tracked = runtime.tracked[key] = tracked_from(body, runtime.settings.resync_interval)
    elif tracked.reseed and not runtime.scheduler.running(key):
        tracked.seed(parse_status(body.get("status")))
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
    runtime.scheduler.forget(key)
    tracked = runtime.tracked.pop(key, None)
    if tracked is not None and tracked.waiting is not None:
        tracked.waiting.close()
    runtime.wakeups.forget(key)
    metrics.OBJECTS.forget(key)


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
    spec = tracked.spec
    target = Target(
        namespace,
        name,
        tracked.uid,
        tracked.generation,
        spec,
        paused=paused,
        reconcile_request=request,
        take_over=tracked.take_over,
    )
    started = time.monotonic()
    cache = runtime.secret_index if runtime.secret_index is not None else {}
    result = await reconcile(runtime, target, state, cache, remote_due=due)
    if state.written.instance_id is not None:  # the API server has it: nothing to remember
        runtime.creations.recorded(tracked.uid, state.written.instance_id)
    _post_events(key, tracked.uid, state)
    if runtime.tracked.get(key) is not tracked:  # deleted meanwhile (and maybe made again)
        return math.inf
    _observe(key, result.outcome, time.monotonic() - started)
    if result.outcome.kind is Kind.RETRYING:
        delay = runtime.backoff.next_delay(result.outcome, state.attempt)
        # A wait the platform asked for (Retry-After) or the account's gate set is not a
        # failure of ours: the backoff after the next real failure must not have grown.
        if result.outcome.retry_after is None:
            state.attempt += 1
    else:
        state.attempt = 0
        if due:
            resync = resync_interval(spec, settings.resync_interval)
            tracked.next_check = time.monotonic() + resync * random.uniform(0.9, 1.1)
        delay = max(0.0, tracked.next_check - time.monotonic())
    delay = min(delay, await _finalized(runtime, key, tracked))
    if result.awaited is not None and await _await_secret(runtime, key, tracked, result.awaited):
        return 0.0
    return delay


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
    if raw is None or str(raw.get("metadata", {}).get("uid", "")) != tracked.uid:
        forget(runtime, key)  # deleted while paused: kopf's listing after the pause does not say so
        return False
    body = kopf.Body(cast(kopf.RawBody, raw))
    tracked.seed(parse_status(body.get("status")))
    tracked.observe(body)
    return True


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


def _post_events(key: Key, uid: str, state: ObjectState) -> None:
    if not state.events:
        return
    ref = object_ref(key[0], key[1], uid)
    for type_, reason, message in state.events:
        if type_ == "Warning":
            kopf.warn(ref, reason=reason, message=bounded(message))
        else:
            kopf.info(ref, reason=reason, message=bounded(message))
    state.events.clear()


@kopf.on.delete(*RESOURCE, id=DELETE_HANDLER)  # type: ignore[arg-type]
async def delete_instance(
    namespace: str,
    name: str,
    uid: str,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_cache: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    logcontext.bind(namespace, name, uid)
    # A pass may be in the middle of a create: let it finish, or its instance could escape us.
    runtime.scheduler.close((namespace, name))  # also when kopf calls this before our event handler
    if not await runtime.scheduler.wait_idle((namespace, name), timeout=35.0):
        raise kopf.TemporaryError("waiting for the reconcile pass to end", delay=1)
    status = parse_status(body.get("status"))
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as error:  # never raised from here: kopf would retry it forever
        token = await deletion.delete_unparsed(runtime, body, status, error)
        await runtime.secrets.delete_token(namespace, token, uid)
        return
    token_secret = effective_token_secret(spec, name)
    if observe_only(spec):
        kopf.info(
            body,
            reason="Orphaned",
            message="managementPolicy is ObserveOnly: the remote instance is never deleted from here",
        )
    elif (spec.deletion_policy or DeletionPolicy.DELETE) is DeletionPolicy.ORPHAN:
        await deletion.release_remote(runtime, body, spec, secret_cache)
    else:
        await deletion.delete_remote(runtime, body, spec, status, secret_cache)
    await runtime.secrets.delete_token(namespace, token_secret, uid)
