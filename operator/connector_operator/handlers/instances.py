"""kopf handlers for ConnectorInstance: a daemon per object that reconciles, and deletion.

Why a daemon and not on.create/on.update: the rules are level-based (compare desired with last
applied, re-check the platform now and then, react to Secret changes), and a daemon per object
runs exactly that loop with the timing we choose: an immediate pass on a change, backoff with
jitter on failures, `Retry-After` when the platform says so, and silence when nothing changed.
kopf still provides the watching, the finalizer, and retries of the delete handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import random
import time
from typing import Any

import kopf
from pydantic import ValidationError

from connector_operator import logcontext, metrics
from connector_operator.api.names import (
    FINALIZER,
    GROUP,
    PAUSED_ANNOTATION,
    PLURAL,
    RECONCILE_REQUEST_ANNOTATION,
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
from connector_operator.domain.outcome import Backoff, Kind, Outcome, bounded
from connector_operator.domain.transition import parse_status
from connector_operator.handlers import deletion
from connector_operator.handlers.accountstate import waiter
from connector_operator.handlers.deleteretry import DELETE_HANDLER
from connector_operator.handlers.reconcile import Awaited, reconcile
from connector_operator.handlers.runtime import Runtime
from connector_operator.handlers.state import ObjectState, Target
from connector_operator.handlers.wakeups import sleep_until
from connector_operator.handlers.watch import secret_view_cache
from connector_operator.kube.api import KubeError
from connector_operator.kube.finalizers import add_finalizer

logger = logging.getLogger(__name__)

RESOURCE = (GROUP, VERSION, PLURAL)
MIN_RESYNC_SECONDS, MAX_RESYNC_SECONDS = parse_duration(MIN_RESYNC), parse_duration(MAX_RESYNC)


@kopf.on.event(*RESOURCE)  # type: ignore[arg-type]
async def instance_changed(
    namespace: str,
    name: str,
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_users: kopf.Index[tuple[str, str], str],
    secret_cache: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    key = (namespace, name)
    meta = body.get("metadata", {})
    deleting = meta.get("deletionTimestamp") is not None
    # A spec change, or a change of the pause or reconcile-now annotations, wakes the daemon; our
    # own status writes change none of these and wake nobody.
    marks = (int(meta.get("generation") or 0), *annotation_marks(meta.get("annotations")))
    runtime.wakeups.observe_generation(key, marks, deleting)
    # kopf has re-indexed the object (or forgotten it) before calling us: safe to release.
    await runtime.holds.references_changed(key, type, body, secret_users, secret_view_cache(secret_cache))
    if type == "DELETED":
        runtime.delete_retries.forget(key)
        runtime.creations.forget(str(meta.get("uid", "")))
        gone = runtime.accounts.users.pop(key, None)
        if gone is not None:  # its account's status (instances, usedBy) and deletion follow
            runtime.wakeups.wake(waiter(gone[0]))
    elif deleting:
        await runtime.delete_retries.on_event(runtime.status, key, body)


@kopf.daemon(*RESOURCE, cancellation_timeout=30.0)  # type: ignore[arg-type]
async def run_instance(
    namespace: str,
    name: str,
    uid: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    secret_cache: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    logcontext.bind(namespace, name, uid)
    settings = runtime.settings
    key = (namespace, name)
    wake = runtime.wakeups.register(key)
    state = ObjectState(status=parse_status(body.get("status")))
    backoff = Backoff(settings.backoff_base, settings.backoff_cap)
    # Spread the first platform check of already-created objects over the resync window:
    # a restarting operator must not fire a thousand GETs at once (and needs none to be correct).
    next_check = time.monotonic() + (
        random.uniform(0, settings.resync_interval) if state.status.instance_id is not None else 0
    )
    born = time.monotonic()
    try:
        while not stopped and body.get("metadata", {}).get("deletionTimestamp") is None:
            wake.clear()
            paused, request = annotation_marks(body["metadata"].get("annotations"))
            # A new reconcile-requested-at value asks for a platform check now (as Flux's requestedAt).
            requested = request is not None and request != state.status.last_handled_reconcile_at
            due = time.monotonic() >= next_check or (requested and not paused)
            target = Target(
                namespace,
                name,
                uid,
                int(body["metadata"].get("generation") or 0),
                dict(body["spec"]),
                paused=paused,
                reconcile_request=request,
            )
            started = time.monotonic()
            result = await reconcile(runtime, target, state, secret_view_cache(secret_cache), remote_due=due)
            if state.written.instance_id is not None:  # the API server has it: nothing to remember
                runtime.creations.recorded(uid, state.written.instance_id)
            _observe(key, result.outcome, time.monotonic() - started)
            _post_events(body, state)
            if result.outcome.kind is Kind.RETRYING:
                delay = backoff.next_delay(result.outcome, state.attempt)
                # A wait the platform asked for (Retry-After) or the account's gate set is not a
                # failure of ours: the backoff after the next real failure must not have grown.
                if result.outcome.retry_after is None:
                    state.attempt += 1
            else:
                state.attempt = 0
                if due:
                    resync = resync_interval(body["spec"], settings.resync_interval)
                    next_check = time.monotonic() + resync * random.uniform(0.9, 1.1)
                delay = max(0.0, next_check - time.monotonic())
            delay = min(delay, await _finalized(runtime, body, time.monotonic() - born))
            await _sleep_until_woken(runtime, wake, stopped, delay, key, result.awaited)
    finally:
        runtime.wakeups.unregister(key)
        metrics.OBJECTS.forget(key)
        if stopped.reason is not None and kopf.DaemonStoppingReason.OPERATOR_PAUSING in stopped.reason:
            # Another copy works while this one is paused (peering): what it creates, this copy's
            # listings do not show. List again before the next create.
            runtime.creations.forget_listings()


# Longer values are compared and recorded as a digest: status does not grow with an annotation.
MAX_REQUEST_TOKEN = 256


def annotation_marks(annotations: Any) -> tuple[bool, str | None]:
    """(paused, reconcile request) from an object's annotations."""
    if not isinstance(annotations, dict):
        return False, None
    paused = annotations.get(PAUSED_ANNOTATION) == "true"
    request = annotations.get(RECONCILE_REQUEST_ANNOTATION)
    if not isinstance(request, str):
        return paused, None
    if len(request) > MAX_REQUEST_TOKEN:
        request = "sha256:" + hashlib.sha256(request.encode()).hexdigest()
    return paused, request


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


async def _finalized(runtime: Runtime, body: kopf.Body, age: float) -> float:
    """Put back a finalizer kopf lost; how long the daemon may sleep before it looks again."""
    meta = body.get("metadata", {})
    current = list(meta.get("finalizers") or [])
    if FINALIZER in current or meta.get("deletionTimestamp") is not None or runtime.kube is None:
        return math.inf
    if age < FINALIZER_GRACE:
        return FINALIZER_GRACE - age
    try:
        await add_finalizer(
            runtime.kube, meta["namespace"], meta["name"], FINALIZER, current, str(meta["resourceVersion"])
        )
    except KubeError as error:  # a 409: it changed meanwhile, and the next look sees it as it is now
        logger.info("finalizer not added to %s/%s: HTTP %s", meta["namespace"], meta["name"], error.status)
        return runtime.settings.backoff_base
    logger.warning("kopf's finalizer was missing on %s/%s: added it", meta["namespace"], meta["name"])
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


async def _sleep_until_woken(
    runtime: Runtime,
    wake: asyncio.Event,
    stopped: kopf.DaemonStopped,
    delay: float,
    key: tuple[str, str],
    awaited: Awaited | None,
) -> None:
    """Until `delay` passes, the object changes, the operator stops, or the awaited Secret moves."""
    namespace = key[0]
    interest = runtime.waits.interest(namespace, awaited.name, key) if awaited else contextlib.nullcontext()
    with interest:
        if awaited is not None:
            await runtime.waits.watching(namespace)
            if await _moved_since_the_pass(runtime, namespace, awaited):
                return
        await sleep_until(delay, wake, stopped)


async def _moved_since_the_pass(runtime: Runtime, namespace: str, awaited: Awaited) -> bool:
    """Whether the awaited Secret appeared (or went) between the pass and the start of the watch
    above, which the watch cannot report. A failed look is no news: sleep, no hot loop."""
    try:
        exists = await runtime.secrets.read(namespace, awaited.name) is not None
    except KubeError:
        return False
    return exists != awaited.existed


def _post_events(body: kopf.Body, state: ObjectState) -> None:
    for type_, reason, message in state.events:
        if type_ == "Warning":
            kopf.warn(body, reason=reason, message=bounded(message))
        else:
            kopf.info(body, reason=reason, message=bounded(message))
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
    # The daemon may be in the middle of a create: let it finish, or its instance could escape us.
    if not await runtime.wakeups.wait_exited((namespace, name), timeout=35.0):
        raise kopf.TemporaryError("waiting for the reconcile loop to stop", delay=1)
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
        kopf.info(
            body, reason="Orphaned", message="deletionPolicy is Orphan: the remote instance is left in place"
        )
    else:
        await deletion.delete_remote(runtime, body, spec, status, secret_cache)
    await runtime.secrets.delete_token(namespace, token_secret, uid)
