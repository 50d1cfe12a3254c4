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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from connector_operator.api.meta import Meta
from connector_operator.api.names import GROUP, PLURAL, VERSION
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
from connector_operator.domain.accounts import AccountKey, Endpoint, Refused, account_key
from connector_operator.domain.inputs import Missing, account_secrets
from connector_operator.domain.outcome import Outcome
from connector_operator.domain.ownership import Identity
from connector_operator.domain.transition import Facts, parse_status, status_after
from connector_operator.engine.objects import Event, object_ref
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials, Instance, host_of
from connector_operator.reconciler.locate import locate
from connector_operator.reconciler.outcomes import classify
from connector_operator.reconciler.runtime import Key, Runtime

# How long the delete handler waits for a running pass (a create: its POST) before it retries.
PASS_WAIT = 35.0


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
    # A pass may be in the middle of a create: let it finish, or its instance could escape us.
    runtime.scheduler.close(key)  # also when kopf calls this before our event handler
    if not await runtime.scheduler.wait_idle(key, timeout=PASS_WAIT):
        return Wait("waiting for the reconcile pass to end", delay=1)
    status = parse_status(body.get("status"))
    try:
        spec = parse_spec(body.get("spec") or {})
    except ValidationError as error:
        verdict, token_secret = await delete_unparsed(runtime, meta, body.get("spec"), status, error)
    else:
        token_secret = effective_token_secret(spec, meta.name)
        verdict = await _delete_parsed(runtime, meta, spec, status, cache)
    if not isinstance(verdict, Wait) and verdict.events:
        # Posted before anything else can fail: a failed token Secret deletion (kopf retries the
        # handler) must not lose the only record of which remote instances were deleted.
        runtime.events(object_ref(meta.namespace, meta.name, meta.uid), verdict.events)
    if isinstance(verdict, Deleted) and token_secret is not None:
        await runtime.secrets.delete_token(meta.namespace, token_secret, meta.uid)
    return verdict


async def _delete_parsed(
    runtime: Runtime,
    meta: Meta,
    spec: ConnectorInstanceSpec,
    status: ConnectorInstanceStatus,
    cache: Mapping[Key, SecretMeta],
) -> Verdict:
    if observe_only(spec):
        message = "managementPolicy is ObserveOnly: the remote instance is never deleted from here"
        return Deleted([("Normal", "Orphaned", message)])
    if (spec.deletion_policy or DeletionPolicy.DELETE) is DeletionPolicy.ORPHAN:
        return await release_remote(runtime, meta, spec, cache)
    return await delete_remote(runtime, meta, spec, status, cache)


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
    api_url = await _endpoint_url(runtime, spec, namespace)  # never status.apiURL: status is no proof
    refusal = runtime.hosts.refusal(api_url)
    if refusal is not None:
        outcome = outcomes.stalled(
            Reason.API_HOST_NOT_ALLOWED,
            f"Cannot delete the remote instance: {refusal}. Ask the platform team to allow the host, or "
            f"release this object and leave the remote instance in place with: "
            f"{release_command(namespace, name)}",
        )
        return await _failed(runtime, meta, status, outcome)
    found = await _account_secrets(runtime, spec, namespace, cache)
    if isinstance(found, Unloaded):
        # A fresh process has not loaded the account yet: its absence proves nothing (chaos found
        # a release right after a restart that left the remote instance behind). Soon again.
        return Wait(found.what, delay=2)
    never_wrote = status.instance_id is None and status.applied_digest is None
    if never_wrote and isinstance(found, Absent | Refused):
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
        what = found.what if isinstance(found, Absent) else found.message
        message = (
            f"{what}: no platform write was ever made for this object, released without calling the platform"
        )
        return Deleted([("Normal", "DeletedWithoutPlatformCall", message)])
    if not isinstance(found, tuple):
        problem = found.message if not isinstance(found, Absent) else found.what
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
        owned = await _owned(runtime, api_url, credentials, gate, identity)
        ids = sorted(owned)
        recorded = status.instance_id
        if recorded is not None and recorded not in owned:
            # Named by status only: proven this object's by the platform, or left alone.
            if await _proven(runtime, api_url, credentials, gate, identity, recorded):
                ids.append(recorded)
            else:
                events.append(("Warning", "NotOwned", f"Remote instance {recorded} (status.instanceID) "
                               f"does not carry this object's identity ({identity.uid_tag}): not deleted, "
                               "left on the platform"))  # fmt: skip
        for instance_id in ids:
            await runtime.instances.delete(api_url, credentials, instance_id, gate=gate, namespace=namespace)
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
    runtime: Runtime, meta: Meta, spec: ConnectorInstanceSpec, cache: Mapping[Key, SecretMeta]
) -> Verdict:
    """`deletionPolicy: Orphan`: remove the object's identity tags from its instance, so that any
    object may adopt it, and release the object whatever happens (an Event says what was left)."""
    namespace, name, uid = meta.namespace, meta.name, meta.uid
    identity = Identity(uid, namespace, name, runtime.settings.cluster_name)
    left = (
        f"deletionPolicy is Orphan: the remote instance is left in place, still tagged "
        f"{identity.uid_tag}; remove that tag on the platform before another object adopts it"
    )
    api_url = await _endpoint_url(runtime, spec, namespace)
    found = await _account_secrets(runtime, spec, namespace, cache)
    if isinstance(found, Unloaded):
        return Wait(found.what, delay=2)  # a fresh process: loaded in a moment
    if runtime.hosts.refusal(api_url) is not None or not isinstance(found, tuple):
        return Deleted([("Warning", "Orphaned", f"{left} (the platform cannot be called)")])
    credentials, gate = found
    try:
        remembered = _remembered(runtime, (namespace, name), uid)
        owned = (
            [remembered]
            if remembered is not None
            else list((await _owned(runtime, api_url, credentials, gate, identity)).values())
        )
        for instance in owned:
            await runtime.instances.retag(
                api_url,
                credentials,
                instance.id,
                identity.released(instance.tags),
                gate=gate,
                namespace=namespace,
            )
    except errors.OpenConnectorsError as error:
        message = f"{left} ({classify(error, ready=False, creating=False, backoff=runtime.backoff).message})"
        return Deleted([("Warning", "Orphaned", message)])
    if not owned:
        return Deleted([("Normal", "Released", "deletionPolicy is Orphan: no remote instance carries "
                         "this object's identity, nothing to release")])  # fmt: skip
    message = (
        f"deletionPolicy is Orphan: remote instance(s) {', '.join(str(i.id) for i in owned)} left "
        "in place without this object's identity tags; any object may adopt them with spec.instanceID"
    )
    return Deleted([("Normal", "Released", message)])


async def _endpoint_url(runtime: Runtime, spec: ConnectorInstanceSpec, namespace: str) -> str:
    located, _ = await locate(runtime, spec, namespace)
    return located.api_url if isinstance(located, Endpoint) else runtime.settings.default_api_url


async def _owned(
    runtime: Runtime, api_url: str, credentials: Credentials, gate: AccountGate | None, identity: Identity
) -> dict[int, Instance]:
    """The instances carrying the object's identity tag, or its claim (searched by each)."""
    found: dict[int, Instance] = {}
    namespace = identity.namespace
    for tag in filter(None, (identity.uid_tag, identity.claim)):
        for instance in await runtime.instances.find_by_tag(
            api_url, credentials, tag, gate=gate, namespace=namespace
        ):
            if identity.owns(instance.tags) and not identity.foreign(instance.tags):
                found[instance.id] = instance
    return found


async def _proven(
    runtime: Runtime,
    api_url: str,
    credentials: Credentials,
    gate: AccountGate | None,
    identity: Identity,
    instance_id: int,
) -> bool:
    """Whether the instance exists and carries the object's identity (a GET)."""
    try:
        instance = await runtime.instances.get(
            api_url, credentials, instance_id, gate=gate, namespace=identity.namespace
        )
    except errors.NotFound:
        return False
    return identity.owns(instance.tags) and not identity.foreign(instance.tags)


def _remembered(runtime: Runtime, key: Key, uid: str) -> Instance | None:
    """The instance the passes proved this object's, with its tags as last seen: no search needed."""
    tracked = runtime.tracked.get(key)
    if tracked is None or tracked.uid != uid or runtime.scheduler.running(key):
        return None
    state = tracked.thaw()
    try:
        instance = state.instance
        return instance if instance is not None and state.verified == instance.id else None
    finally:
        tracked.park()


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


@dataclass(frozen=True)
class Absent:
    what: str  # "Secret 'x' does not exist", or the account's


@dataclass(frozen=True)
class Unloaded:
    what: str  # the account exists, but this process has not read it (or its Secret) yet


async def _account_secrets(
    runtime: Runtime,
    spec: ConnectorInstanceSpec,
    namespace: str,
    cache: Mapping[Key, SecretMeta],
) -> tuple[Credentials, AccountGate | None] | Missing | Refused | Absent | Unloaded:
    """The credentials to delete with (and the account's gate); `Absent` when their Secret, or the
    account, does not exist; otherwise what is wrong. Configuration Secrets are not needed."""
    located, account = await locate(runtime, spec, namespace)
    if isinstance(located, Refused):
        if located.reason is not Reason.ACCOUNT_NOT_FOUND:
            return located
        key = account_key(spec, namespace, runtime.settings.default_account)
        if key is not None and await account_exists(runtime, key):
            return Unloaded(f"{key} is not loaded yet")
        return Absent(located.message)
    if account is not None and located.account is not None:
        if not account.loaded:
            return Unloaded(f"{located.account}: its Secret is not read yet")
        if account.data is None:
            # Not held by our finalizer (the account daemon reads it): its absence proves nothing.
            return Missing(f"Secret {account.secret_label!r} ({located.account}) does not exist", "")
        found = account_secrets(account.secrets(), account.secret_label)
        gate = runtime.gate(located.account, located.budget)
    else:
        view = await runtime.read_secret(cache, namespace, located.secret_name)
        if view is None:
            return Absent(f"Secret {located.secret_name!r} does not exist")
        found = account_secrets({located.secret_name: view.data}, located.secret_name)
        gate = None
    return (Credentials(*found), gate) if isinstance(found, tuple) else found


async def account_exists(runtime: Runtime, key: AccountKey) -> bool:
    """Whether the API server has the account (a fresh process may not have loaded it yet)."""
    if runtime.kube is None:
        return True  # cannot tell: assume it does, and wait
    plural = key.plural
    scope = f"namespaces/{key.namespace}/" if key.namespace else ""
    return (
        await runtime.kube.request("GET", f"/apis/{GROUP}/{VERSION}/{scope}{plural}/{key.name}") is not None
    )
