"""One reconcile pass for one ConnectorInstance: inputs, remote instance, token Secret, status.

The pass is level-based and idempotent: it compares what should be with what was last applied
and calls the platform only for a real difference, or when a periodic check is due. Creation
looks the remote instance up by the object's identity tag first, so a crash between the POST and
the status write, or kopf re-running its handlers, never yields a second instance.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from connector_operator.api.spec import (
    ConnectorInstanceSpec,
    effective_deletion_policy,
    effective_instance_name,
    effective_token_secret,
    parse_spec,
)
from connector_operator.api.status import ConditionType, Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.desired import (
    DesiredInstance,
    attempt_digest,
    desired_instance,
    identity_tag,
    token_digest,
)
from connector_operator.domain.inputs import Missing, referenced_secrets, resolve
from connector_operator.domain.outcome import Outcome
from connector_operator.handlers.errors import classify
from connector_operator.handlers.runtime import Runtime
from connector_operator.kube.api import KubeError
from connector_operator.kube.secrets import Owner, SecretConflict, SecretView
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials, Instance

logger = logging.getLogger(__name__)


def utcnow() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ObjectState:
    """A daemon's memory of its object. The daemon is the only writer of status, so its copy is
    authoritative: it never waits for its own write to come back through the watch."""

    status: dict[str, Any]
    instance: Instance | None = None  # last seen remote instance (holds the token; memory only)
    stalled_on: tuple[int, str] | None = None  # (generation, attempt digest) judged impossible
    attempt: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)

    @property
    def ready(self) -> bool:
        for condition in self.status.get("conditions") or []:
            if condition.get("type") == ConditionType.READY.value:
                return bool(condition.get("status") == "True")
        return False


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]

    @property
    def owner(self) -> Owner:
        return Owner(self.name, self.uid)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    # A Secret the label-filtered watch cannot see (missing, or someone else's in the way) whose
    # change should still cut the wait short.
    watch_secret: str | None = None


async def reconcile(
    rt: Runtime,
    target: Target,
    state: ObjectState,
    cache: Mapping[tuple[str, str], SecretView],
    *,
    remote_due: bool,
) -> Result:
    """Run one pass, write the status if it changed, and say what happened."""
    try:
        spec = parse_spec(target.spec)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        invalid = outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: {problems}")
        return Result(await _finish(rt, target, state, invalid, {}))
    api_url = spec.api_url or rt.settings.default_api_url
    facts: dict[str, Any] = {
        "apiURL": api_url,
        "instanceName": effective_instance_name(spec, target.namespace, target.name),
        "tokenSecretName": effective_token_secret(spec, target.name),
        "deletionPolicy": effective_deletion_policy(spec).value,
    }
    awaited: str | None = None
    attempt: str | None = None
    try:
        secrets = {n: await rt.read_secret(cache, target.namespace, n) for n in referenced_secrets(spec)}
        resolved = resolve(spec, {n: (v.data if v else None) for n, v in secrets.items()})
        if isinstance(resolved, Missing):
            awaited = resolved.secret_name if secrets.get(resolved.secret_name) is None else None
            waiting = outcomes.retrying(Reason.WAITING_FOR_SECRET, resolved.message, ready=state.ready)
            return Result(await _finish(rt, target, state, waiting, facts), awaited)
        desired = desired_instance(
            spec,
            namespace=target.namespace,
            name=target.name,
            uid=target.uid,
            configuration=resolved.configuration,
        )
        digest = desired.digest(target.uid, api_url)
        attempt = attempt_digest(digest, resolved.user_secret, resolved.organization_secret, target.uid)
        if state.stalled_on == (target.generation, attempt):
            return Result(state_outcome(state))  # nothing changed since it was judged impossible
        credentials = Credentials(resolved.user_secret, resolved.organization_secret)
        # `facts` collects progress as it happens: a failure later in the pass still records it.
        outcome = await _sync_remote(
            rt, target, spec, state, desired, digest, api_url, credentials, cache, facts, remote_due
        )
    except _Conflict as conflict:
        outcome, awaited = outcomes.stalled(Reason.SECRET_CONFLICT, conflict.message), conflict.secret
    except errors.OpenConnectorsError as error:
        outcome = classify(
            error, ready=state.ready, creating=facts.get("instanceID", state.status.get("instanceID")) is None
        )
    except KubeError as error:
        outcome = classify(error, ready=state.ready, creating=False)
    except Exception as error:
        # A bug of ours: the traceback helps, and our own exceptions carry no secret values.
        logger.exception("reconcile of %s/%s failed", target.namespace, target.name)
        outcome = classify(error, ready=state.ready, creating=False)
    terminal = outcome.kind is outcomes.Kind.STALLED and outcome.reason in TERMINAL_UNTIL_CHANGED
    state.stalled_on = (target.generation, attempt) if terminal and attempt is not None else None
    return Result(await _finish(rt, target, state, outcome, facts), awaited)


class _Conflict(Exception):
    def __init__(self, secret: str, message: str) -> None:
        super().__init__(message)
        self.secret, self.message = secret, message


# Terminal outcomes that only a change of spec or Secret content can clear; others are re-checked.
TERMINAL_UNTIL_CHANGED = frozenset(
    {
        Reason.CONFIGURATION_REJECTED,
        Reason.CREDENTIALS_REJECTED,
        Reason.CONNECTOR_NOT_FOUND,
        Reason.INVALID_SPEC,
    }
)


def state_outcome(state: ObjectState) -> Outcome:
    stalled: dict[str, Any] = next(
        (c for c in state.status.get("conditions") or [] if c.get("type") == "Stalled"), {}
    )
    return outcomes.stalled(
        Reason(stalled.get("reason", Reason.RECONCILE_ERROR.value)),
        stalled.get("message", ""),
        ready=state.ready,
    )


async def _sync_remote(
    rt: Runtime,
    target: Target,
    spec: ConnectorInstanceSpec,
    state: ObjectState,
    desired: DesiredInstance,
    digest: str,
    api_url: str,
    credentials: Credentials,
    cache: Mapping[tuple[str, str], SecretView],
    updates: dict[str, Any],
    remote_due: bool,
) -> Outcome:
    instance_id = state.status.get("instanceID")
    instance: Instance | None = None
    if instance_id is None:
        instance = await _adopt_or_create(rt, target, state, desired, api_url, credentials)
        updates.update(appliedDigest=digest, lastSyncTime=utcnow())
    elif state.status.get("appliedDigest") != digest:
        try:
            instance = await rt.instances.update(api_url, credentials, instance_id, desired.body())
            state.events.append(("Normal", Reason.UPDATING.value, f"Updated remote instance {instance_id}"))
        except errors.NotFound:
            instance = await _recreate(rt, target, state, desired, api_url, credentials, instance_id)
        updates.update(appliedDigest=digest, lastSyncTime=utcnow())
    elif remote_due or (
        state.instance is None and not _token_secret_plausible(target, spec, state, api_url, cache)
    ):
        try:
            instance = await rt.instances.get(api_url, credentials, instance_id)
        except errors.NotFound:
            instance = await _recreate(rt, target, state, desired, api_url, credentials, instance_id)
            updates.update(appliedDigest=digest, lastSyncTime=utcnow())
    if instance is not None:
        if state.instance is not None and state.instance.token != instance.token:
            state.events.append(
                ("Normal", "TokenChanged", "The platform issued a new token; the Secret follows")
            )
        state.instance = instance
    current = state.instance
    if current is not None:
        updates.update(
            instanceID=current.id,
            tokenDigest=token_digest(current.token, target.uid),
            valid=current.valid,
            disabled=current.disabled,
            connector={
                "key": current.element_key or spec.connector_key,
                "name": current.element_name,
                "hub": current.hub,
                "authenticationType": current.authentication_type,
            },
        )
        token_name = effective_token_secret(spec, target.name)
        # Not in the watch cache: try to create it; a 409 makes write_token look before it writes.
        existing = cache.get((target.namespace, token_name))
        data = {"token": current.token, "instanceID": str(current.id), "apiURL": api_url}
        try:
            if await rt.secrets.write_token(target.namespace, token_name, target.owner, data, existing):
                logger.info("wrote token Secret %s/%s", target.namespace, token_name)
        except SecretConflict as conflict:
            raise _Conflict(token_name, str(conflict)) from None
        if not current.valid:
            return outcomes.stalled(
                Reason.INSTANCE_INVALID,
                f"The platform reports instance {current.id} as invalid; "
                "re-authenticate it on the platform or update its configuration",
            )
        if current.disabled:
            return outcomes.stalled(
                Reason.INSTANCE_DISABLED, f"Instance {current.id} is disabled on the platform"
            )
    return outcomes.success()


def _token_secret_plausible(
    target: Target,
    spec: ConnectorInstanceSpec,
    state: ObjectState,
    api_url: str,
    cache: Mapping[tuple[str, str], SecretView],
) -> bool:
    """Without the token in memory (after a restart), trust a token Secret that is ours and consistent."""
    name = effective_token_secret(spec, target.name)
    view = cache.get((target.namespace, name))
    return (
        view is not None
        and view.managed
        and view.owner_uid == target.uid
        and token_digest(view.data.get("token", ""), target.uid) == state.status.get("tokenDigest")
        and view.data.get("instanceID") == str(state.status.get("instanceID"))
        and view.data.get("apiURL") == api_url
    )


async def _adopt_or_create(
    rt: Runtime,
    target: Target,
    state: ObjectState,
    desired: DesiredInstance,
    api_url: str,
    credentials: Credentials,
) -> Instance:
    found = sorted(
        await rt.instances.find_by_tag(api_url, credentials, identity_tag(target.uid)), key=lambda i: i.id
    )
    if found:
        keep, *extra = found
        for duplicate in extra:  # cannot happen through this operator; clean up if something else did it
            await rt.instances.delete(api_url, credentials, duplicate.id)
        state.events.append(
            ("Normal", "Adopted", f"Found remote instance {keep.id} tagged with this object's UID")
        )
        # The found instance may predate a spec change: bring it to the desired state.
        return await rt.instances.update(api_url, credentials, keep.id, desired.body())
    instance = await rt.instances.create(api_url, credentials, desired.body())
    state.events.append(("Normal", Reason.CREATING.value, f"Created remote instance {instance.id}"))
    return instance


async def _recreate(
    rt: Runtime,
    target: Target,
    state: ObjectState,
    desired: DesiredInstance,
    api_url: str,
    credentials: Credentials,
    gone: int,
) -> Instance:
    state.events.append(
        ("Warning", Reason.REMOTE_NOT_FOUND.value, f"Remote instance {gone} is gone; creating a new one")
    )
    return await _adopt_or_create(rt, target, state, desired, api_url, credentials)


async def _finish(
    rt: Runtime, target: Target, state: ObjectState, outcome: Outcome, facts: Mapping[str, Any]
) -> Outcome:
    """Compute the new status and write only what changed (an idle pass writes nothing)."""
    new = {**state.status, **facts}
    new["conditions"] = outcomes.condition_dicts(
        outcome, target.generation, state.status.get("conditions"), utcnow()
    )
    if outcome.handled:
        new["observedGeneration"] = target.generation
    _note_transitions(state, outcome)
    changed = {k: v for k, v in new.items() if state.status.get(k) != v}
    if changed and await rt.status.patch(target.namespace, target.name, changed):
        state.status = new
    return outcome


def _note_transitions(state: ObjectState, outcome: Outcome) -> None:
    """Queue Events for the transitions a human wants to hear about: stalled, and ready again."""
    before = {c.get("type"): c for c in state.status.get("conditions") or []}
    stalled = before.get(ConditionType.STALLED.value, {})
    if outcome.kind is outcomes.Kind.STALLED and (
        stalled.get("status") != "True" or stalled.get("reason") != outcome.reason.value
    ):
        state.events.append(("Warning", outcome.reason.value, outcome.message))
    if outcome.ready and not state.ready and state.status.get("conditions"):
        # Recovery only: a first creation has its own "Created" event already.
        state.events.append(("Normal", Reason.AVAILABLE.value, "The instance is ready"))
