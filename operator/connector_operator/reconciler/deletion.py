"""Deleting the remote instance under `deletionPolicy: Delete`, and releasing it under `Orphan`.

Everything the object owns is deleted, and nothing else: the instances carrying its identity tag
(or its claim, where the operator has a cluster name), which includes one created just before a
crash whose ID never reached status. The ID in status is not proof (anyone who may write the
status subresource can set it): it is deleted only when the platform shows it carries the
object's identity; otherwise it is left alone with a Warning Event (`NotOwned`). The endpoint
is the spec's or the account's, as for a create, never `status.apiURL`.

`Orphan` hands the instance over: the object's identity tags are removed with one PATCH, so that
another object may adopt it (`spec.instanceID`). When that cannot be done (no credentials, the
platform does not answer) the object is released all the same, and an Event names the tag left.

The account Secret cannot vanish under an object that used it: it carries the in-use
finalizer (engine/secretholds.py), so a namespace deletion leaves it readable until the object
is gone. An object whose account Secret never existed (a typo) made no platform write and is
released without one. When the account secrets are unusable all the same (a key removed), the
object says so in `Stalled` with the one command that releases it, instead of hanging without a word.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from connector_operator.api.meta import Meta
from connector_operator.api.names import PLURAL
from connector_operator.api.spec import (
    ConnectorInstanceSpec,
    DeletionPolicy,
    LocalObjectReference,
    effective_token_secret,
    observe_only,
    parse_spec,
)
from connector_operator.api.status import ConnectorInstanceStatus, Reason
from connector_operator.api.validation import describe
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import Refused
from connector_operator.domain.outcome import Outcome
from connector_operator.domain.ownership import Identity
from connector_operator.domain.transition import Facts, parse_status, status_after
from connector_operator.engine.objects import Event, object_ref
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials, host_of
from connector_operator.reconciler import deletecalls
from connector_operator.reconciler.outcomes import classify
from connector_operator.reconciler.runtime import Key, Runtime

# How long the delete handler waits for a running pass (a create: its POST) before it retries.
PASS_WAIT = 35.0
# Issue 20. One run of the delete handler waits this long for its attempt on the platform; kopf
# looks at no event of the object while it runs (engine/deleteretry.py `Attempt`).
HANDLER_SLICE = 2.0
# kopf's delay after a run that left its attempt running; the attempt's end runs it sooner.
ATTEMPT_WAIT = 30.0
# Orphan: how long the release may take in all (a wait for a running pass, then the platform
# taking the identity tags off, slot waits included), and how long of it for the pass. The
# object is released whatever happens.
RELEASE_WAIT = 5.0
RELEASE_PASS_WAIT = 2.0


@dataclass(frozen=True)
class Deleted:
    """The remote side is done with (deleted, released, or never written): the object may go."""

    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class Retry:
    """The deletion failed or is blocked: `outcome` says why (written to the conditions)."""

    outcome: Outcome
    delay: float
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class Wait:
    """Not now, and not a failure: a pass is running, or this process has not loaded the account."""

    what: str
    delay: float


Verdict = Deleted | Retry | Wait


def release_command(namespace: str, name: str) -> str:
    return (
        f"kubectl patch {PLURAL} {name} -n {namespace} --type merge "
        """-p '{"spec":{"deletionPolicy":"Orphan"}}'"""
    )


async def delete(runtime: Runtime, body: Mapping[str, Any], cache: Mapping[Key, SecretMeta]) -> Verdict:
    """Everything the deletion of a ConnectorInstance does on the platform and with its token
    Secret. Its Events are posted through the sink; the kopf shell turns `Retry` and `Wait`
    into kopf's retries."""
    meta = Meta.of(body)
    key = (meta.namespace, meta.name)
    runtime.scheduler.close(key)  # also when kopf calls this before our event handler
    status = parse_status(body.get("status"))
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as error:
        await runtime.delete_retries.withdraw(key)
        # A pass may be in the middle of a create: let it finish, or its instance could escape us.
        if not await runtime.scheduler.wait_idle(key, timeout=PASS_WAIT):
            return Wait("waiting for the reconcile pass to end", delay=1)
        verdict, token_secret = await delete_unparsed(runtime, meta, body.get("spec"), status, error)
    else:
        token_secret = effective_token_secret(spec, meta.name)
        if _releases(spec):
            verdict = await _release_now(runtime, meta, spec, cache)
        else:
            verdict = await _delete_in_attempt(runtime, meta, spec, status, cache)
    if not isinstance(verdict, Wait) and verdict.events:
        # Posted before anything else can fail: a failed token Secret deletion (kopf retries the
        # handler) must not lose the only record of which remote instances were deleted.
        runtime.events(object_ref(meta.namespace, meta.name, meta.uid), verdict.events)
    if isinstance(verdict, Deleted) and token_secret is not None:
        await runtime.secrets.delete_token(meta.namespace, token_secret, meta.uid)
    return verdict


def _releases(spec: ConnectorInstanceSpec) -> bool:
    """Whether the deletion leaves the remote instance in place (Orphan, or ObserveOnly)."""
    return observe_only(spec) or (spec.deletion_policy or DeletionPolicy.DELETE) is DeletionPolicy.ORPHAN


async def _release_now(
    runtime: Runtime, meta: Meta, spec: ConnectorInstanceSpec, cache: Mapping[Key, SecretMeta]
) -> Verdict:
    """Orphan (or ObserveOnly), now: a Delete attempt still running is withdrawn (one that ended
    has deleted already: its outcome stands), and the release is bounded in time."""
    key = (meta.namespace, meta.name)
    ended, in_flight = await runtime.delete_retries.withdraw(key)
    if isinstance(ended, Deleted):
        return ended
    notes: list[Event] = []
    if in_flight is not None:
        notes.append(("Warning", "Orphaned", f"deletionPolicy became Orphan while the DELETE of remote "
                      f"instance {in_flight} was in flight: it may be deleted all the same"))  # fmt: skip
    if observe_only(spec):
        message = "managementPolicy is ObserveOnly: the remote instance is never deleted from here"
        return Deleted([*notes, ("Normal", "Orphaned", message)])
    # A running pass may still be creating; its instance, if any, is left as a release leaves one.
    started = time.monotonic()
    await runtime.scheduler.wait_idle(key, timeout=RELEASE_PASS_WAIT)
    verdict = await release_remote(runtime, meta, spec, cache, RELEASE_WAIT - (time.monotonic() - started))
    if isinstance(verdict, Deleted) and notes:
        return Deleted([*notes, *verdict.events])
    return verdict


async def _delete_in_attempt(
    runtime: Runtime,
    meta: Meta,
    spec: ConnectorInstanceSpec,
    status: ConnectorInstanceStatus,
    cache: Mapping[Key, SecretMeta],
) -> Verdict:
    """Delete: the platform work runs as the object's attempt (engine/deleteretry.py), which this
    run of the handler waits for a moment only; a later run takes its outcome."""
    key = (meta.namespace, meta.name)

    async def attempt() -> Verdict:
        # A pass may be in the middle of a create: let it finish, or its instance could escape us.
        if not await runtime.scheduler.wait_idle(key, timeout=PASS_WAIT):
            return Wait("waiting for the reconcile pass to end", delay=1)
        return await delete_remote(runtime, meta, spec, status, cache)

    running = runtime.delete_retries.attempt(runtime.status, key, (meta.uid, meta.generation), attempt)
    if await running.within(HANDLER_SLICE):
        verdict: Verdict = runtime.delete_retries.take(key, running)
        return verdict
    waiting = outcomes.retrying(
        Reason.API_UNAVAILABLE,
        "Deleting the remote instance: waiting for the platform. To release this object without "
        f"deleting the remote instance: {release_command(meta.namespace, meta.name)}",
        ready=False,
    )
    await report(runtime, meta.namespace, meta.name, meta.generation, status, waiting)
    return Wait("waiting for the platform to answer the deletion", delay=ATTEMPT_WAIT)


async def delete_unparsed(
    runtime: Runtime, meta: Meta, raw: Any, status: ConnectorInstanceStatus, error: ValidationError
) -> tuple[Verdict, str | None]:
    """The deletion of an object whose spec does not parse (admitted by an earlier CRD, or read
    differently by the API server than here): raising the ValidationError made kopf retry every few
    seconds forever, so the object, and a namespace deleting it, never went. Only the raw
    `deletionPolicy` is read. `Orphan` releases the object, with its token Secret's name.
    Anything else needs the spec (which account, which URL): `Stalled`, reason `InvalidSpec`, with
    the release command, retried with the deletion's backoff; a spec change (a fix, or `Orphan`)
    runs it again at once (engine/deleteretry.py)."""
    namespace, name = meta.namespace, meta.name
    raw = raw if isinstance(raw, Mapping) else {}
    if raw.get("deletionPolicy") == DeletionPolicy.ORPHAN:
        released = Deleted([("Normal", "Orphaned", "deletionPolicy is Orphan: the remote instance is left in "
                             "place (the rest of the spec does not parse)")])  # fmt: skip
        try:
            return released, LocalObjectReference.model_validate(raw.get("tokenSecret")).name
        except ValidationError:
            return released, f"{name}-token"  # as effective_token_secret; deleted only if this object owns it
    outcome = outcomes.stalled(
        Reason.INVALID_SPEC,
        f"Cannot delete the remote instance: the spec does not parse ({describe(error)}). Correct the "
        f"spec, or release this object and leave the remote instance in place with: "
        f"{release_command(namespace, name)}",
    )
    runtime.delete_retries.attempting((namespace, name))
    return await _failed(runtime, meta, status, outcome), None


async def _failed(
    runtime: Runtime,
    meta: Meta,
    status: ConnectorInstanceStatus,
    outcome: Outcome,
    platform: tuple[str, Credentials] | None = None,
    events: list[Event] | None = None,
) -> Retry:
    """Say why the deletion waits (the conditions only), and when it runs again."""
    await report(runtime, meta.namespace, meta.name, meta.generation, status, outcome)
    delay = runtime.delete_retries.failed((meta.namespace, meta.name), outcome, platform)
    return Retry(outcome, delay, events or [])


async def delete_remote(
    runtime: Runtime,
    meta: Meta,
    spec: ConnectorInstanceSpec,
    status: ConnectorInstanceStatus,
    cache: Mapping[Key, SecretMeta],
) -> Verdict:
    namespace, name = meta.namespace, meta.name
    # The delays come from our own count, not kopf's `retry` (see engine/deleteretry.py).
    runtime.delete_retries.attempting((namespace, name))
    api_url = await deletecalls.endpoint_url(
        runtime, spec, namespace
    )  # never status.apiURL: status is no proof
    refusal = runtime.hosts.refusal(api_url)
    if refusal is not None:
        outcome = outcomes.stalled(
            Reason.API_HOST_NOT_ALLOWED,
            f"Cannot delete the remote instance: {refusal}. Ask the platform team to allow the host, or "
            f"release this object and leave the remote instance in place with: "
            f"{release_command(namespace, name)}",
        )
        return await _failed(runtime, meta, status, outcome)
    found = await deletecalls.account_secrets_of(runtime, spec, namespace, cache)
    if isinstance(found, deletecalls.Unloaded):
        # A fresh process has not loaded the account yet: its absence proves nothing (chaos found
        # a release right after a restart that left the remote instance behind). Soon again.
        return Wait(found.what, delay=2)
    never_wrote = status.instance_id is None and status.applied_digest is None
    if never_wrote and isinstance(found, deletecalls.Absent | Refused):
        # No platform write was ever made: every write records instanceID or appliedDigest, and a
        # write whose status update was lost (a crash right after a create) read this Secret first,
        # which put the in-use finalizer on it, so the Secret would still be here (Terminating at
        # worst). A 404 therefore means that it never existed, or that someone force-removed our
        # finalizer (or deleted it during an upgrade from a version without one) right after such
        # a lost write: the one case where this leaves a remote instance behind, tagged
        # k8s-uid:<uid>. Likewise an account the API server does not have (one in use cannot be
        # deleted: its finalizer waits for its instances), or one that refuses this object: no
        # write was made through it.
        # A Secret that exists but lacks a key is no proof of anything: blocked below.
        what = found.what if isinstance(found, deletecalls.Absent) else found.message
        message = (
            f"{what}: no platform write was ever made for this object, released without calling the platform"
        )
        return Deleted([("Normal", "DeletedWithoutPlatformCall", message)])
    if not isinstance(found, tuple):
        problem = found.message if not isinstance(found, deletecalls.Absent) else found.what
        outcome = outcomes.stalled(
            Reason.DELETION_BLOCKED,
            f"Cannot delete the remote instance: {problem}. Restore the Secret, or release this "
            f"object and leave the remote instance in place with: {release_command(namespace, name)}",
            ready=False,
        )
        return await _failed(runtime, meta, status, outcome)
    return await _delete_owned(runtime, meta, status, api_url, found)


async def _delete_owned(
    runtime: Runtime,
    meta: Meta,
    status: ConnectorInstanceStatus,
    api_url: str,
    found: tuple[Credentials, AccountGate | None],
) -> Verdict:
    """Delete every instance that carries the object's identity, and the one status names if the
    platform shows it is the object's."""
    credentials, gate = found
    namespace, name = meta.namespace, meta.name
    identity = Identity(meta.uid, namespace, name, runtime.settings.cluster_name)
    events: list[Event] = []
    try:
        owned = await deletecalls.owned(runtime, api_url, credentials, gate, identity)
        ids = sorted(owned)
        recorded = status.instance_id
        if recorded is not None and recorded not in owned:
            # Named by status only: proven this object's by the platform, or left alone.
            if await deletecalls.proven(runtime, api_url, credentials, gate, identity, recorded):
                ids.append(recorded)
            else:
                events.append(("Warning", "NotOwned", f"Remote instance {recorded} (status.instanceID) "
                               f"does not carry this object's identity ({identity.uid_tag}): not deleted, "
                               "left on the platform"))  # fmt: skip
        for instance_id in ids:
            runtime.delete_retries.sending((namespace, name), instance_id)
            await runtime.instances.delete(api_url, credentials, instance_id, gate=gate, namespace=namespace)
            runtime.delete_retries.sending((namespace, name), None)
    except errors.OpenConnectorsError as error:
        outcome = classify(error, ready=False, creating=False, backoff=runtime.backoff)
        if outcome.kind is outcomes.Kind.STALLED:
            outcome = outcomes.stalled(
                outcome.reason,
                f"{outcome.message}. To release this object without deleting the remote "
                f"instance: {release_command(namespace, name)}",
            )
        platform = (host_of(api_url), credentials)  # waits for it to answer again, when transient
        return await _failed(runtime, meta, status, outcome, platform, events)
    runtime.delete_retries.succeeded((namespace, name))
    if ids:
        events.append(("Normal", "Deleted", f"Deleted remote instance(s) {', '.join(map(str, sorted(ids)))}"))
    return Deleted(events)


async def release_remote(
    runtime: Runtime,
    meta: Meta,
    spec: ConnectorInstanceSpec,
    cache: Mapping[Key, SecretMeta],
    budget: float = RELEASE_WAIT,
) -> Verdict:
    """`deletionPolicy: Orphan`: remove the object's identity tags from its instance, so that any
    object may adopt it, and release the object whatever happens (an Event says what was left)."""
    namespace, name, uid = meta.namespace, meta.name, meta.uid
    identity = Identity(uid, namespace, name, runtime.settings.cluster_name)
    left = (
        f"deletionPolicy is Orphan: the remote instance is left in place, still tagged "
        f"{identity.uid_tag}; remove that tag on the platform before another object adopts it"
    )
    api_url = await deletecalls.endpoint_url(runtime, spec, namespace)
    found = await deletecalls.account_secrets_of(runtime, spec, namespace, cache)
    if isinstance(found, deletecalls.Unloaded):
        return Wait(found.what, delay=2)  # a fresh process: loaded in a moment
    if runtime.hosts.refusal(api_url) is not None or not isinstance(found, tuple):
        return Deleted([("Warning", "Orphaned", f"{left} (the platform cannot be called)")])
    credentials, gate = found
    try:
        # Issue 20: released whatever the platform does, so not after its request deadline (30 s),
        # nor after a wait for a slot behind a namespace's slow calls.
        async with asyncio.timeout(max(budget, 0.0)):
            remembered = deletecalls.remembered(runtime, (namespace, name), uid)
            owned = (
                [remembered]
                if remembered is not None
                else list((await deletecalls.owned(runtime, api_url, credentials, gate, identity)).values())
            )
            for instance in owned:
                # Only the tags: the platform keeps what a PATCH does not name.
                released = {"tags": identity.released(instance.tags)}
                await runtime.instances.patch(
                    api_url, credentials, instance.id, released, gate=gate, namespace=namespace
                )
    except errors.OpenConnectorsError as error:
        message = f"{left} ({classify(error, ready=False, creating=False, backoff=runtime.backoff).message})"
        return Deleted([("Warning", "Orphaned", message)])
    except TimeoutError:
        return Deleted(
            [("Warning", "Orphaned", f"{left} (the platform did not answer within {RELEASE_WAIT:g}s)")]
        )
    if not owned:
        return Deleted([("Normal", "Released", "deletionPolicy is Orphan: no remote instance carries "
                         "this object's identity, nothing to release")])  # fmt: skip
    message = (
        f"deletionPolicy is Orphan: remote instance(s) {', '.join(str(i.id) for i in owned)} left "
        "in place without this object's identity tags; any object may adopt them with spec.instanceID"
    )
    return Deleted([("Normal", "Released", message)])


async def report(
    runtime: Runtime,
    namespace: str,
    name: str,
    generation: int,
    status: ConnectorInstanceStatus,
    outcome: Outcome,
) -> None:
    """Write why the deletion waits: the conditions only (see `status_after`'s `deleting`)."""
    _, patch = status_after(status, outcome, Facts(), generation, runtime.clock(), deleting=True)
    if patch:
        await runtime.status.patch(namespace, name, patch)
