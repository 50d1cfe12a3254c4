"""One reconcile pass for one ConnectorInstance: spec, inputs, remote instance, status.

The pass is level-based and idempotent: it compares what should be with what was last applied
and calls the platform only for a real difference, or when a periodic check is due (the remote
work is reconciler/remote.py). Every pass ends in `finish`, which writes the status transition of
`domain.transition` and nothing when nothing changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from connector_operator.api.spec import (
    ConnectorInstanceSpec,
    effective_deletion_policy,
    effective_instance_name,
    effective_token_secret,
    observe_only,
    parse_spec,
    referenced_secrets,
)
from connector_operator.api.status import ConditionType, Reason
from connector_operator.api.validation import describe
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import Endpoint, Refused, account_key, feature_refusal
from connector_operator.domain.grants import OAuthInputs, resolve_oauth
from connector_operator.domain.inputs import Missing, Resolved, SecretData, TooLarge, resolve
from connector_operator.domain.outcome import Outcome
from connector_operator.domain.tokensecret import TokenSecretSpec, checked, token_secret_shape
from connector_operator.domain.transition import Effective, Facts, merge_patch, status_after, stored
from connector_operator.engine.accounts import ROTATION_GRACE, AccountState
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.kube.api import KubeError
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors import errors
from connector_operator.reconciler.locate import locate
from connector_operator.reconciler.outcomes import TokenSecretConflict, classify
from connector_operator.reconciler.remote import RemotePass
from connector_operator.reconciler.request import Request, remote_pass
from connector_operator.reconciler.runtime import Key, Runtime, in_seconds
from connector_operator.reconciler.tokenexport import off_loop

logger = logging.getLogger(__name__)

# Terminal outcomes that only a change of spec or Secret content can clear; others are re-checked.
TERMINAL_UNTIL_CHANGED = frozenset(
    {
        Reason.CONFIGURATION_REJECTED,
        Reason.CREDENTIALS_REJECTED,
        Reason.CONNECTOR_NOT_FOUND,
        Reason.INVALID_SPEC,
    }
)


@dataclass(frozen=True)
class Awaited:
    """A Secret the label-filtered watch cannot see (missing, or someone else's in the way) whose
    change should still cut the wait short."""

    name: str
    existed: bool  # when the pass looked


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    awaited: Awaited | None = None


@dataclass(frozen=True)
class Ended:
    """The pass ends before the platform: this outcome, these facts, maybe a Secret to wait for."""

    outcome: Outcome
    facts: Facts = field(default_factory=Facts)
    awaited: Awaited | None = None


@dataclass(frozen=True)
class Admitted:
    """What the pass may go on with: a valid spec, an allowed endpoint, the effective settings."""

    spec: ConnectorInstanceSpec
    secret: TokenSecretSpec  # checked by `_admit_templates`, last
    located: Endpoint
    account: AccountState | None
    facts: Facts

    @property
    def settings(self) -> Effective:
        assert self.facts.effective is not None
        return self.facts.effective


async def reconcile(
    rt: Runtime,
    target: Target,
    state: ObjectState,
    cache: Mapping[Key, SecretMeta],
    *,
    remote_due: bool,
) -> Result:
    """Run one pass, write the status if it changed, and say what happened."""
    valid = _admit_spec(target, state)
    key = (
        None
        if isinstance(valid, Ended)
        else account_key(valid, target.namespace, rt.settings.default_account)
    )
    if key is not None and rt.accounts.loading(key):
        # Just started: the account exists but its loop has not loaded it yet. Not judged, not
        # written (a restart must not flicker every instance of an account); retried shortly.
        return Result(
            outcomes.retrying(Reason.ACCOUNT_NOT_FOUND, f"{key} is being loaded", ready=state.ready)
        )
    admitted = valid if isinstance(valid, Ended) else await _admit_endpoint(rt, target, state, valid)
    if not isinstance(admitted, Ended):
        admitted = await _admit_templates(admitted, target, state)
    elif not isinstance(valid, Ended) and admitted.outcome.reason is Reason.ACCOUNT_NOT_ALLOWED:
        await _withdraw_account_secrets(rt, target, state, cache, valid)
    if isinstance(admitted, Ended):
        return Result(await finish(rt, target, state, admitted.outcome, admitted.facts), admitted.awaited)
    remote: RemotePass | None = None
    try:
        prepared = await _prepare(rt, target, state, cache, admitted)
        if isinstance(prepared, Ended):
            return Result(await finish(rt, target, state, prepared.outcome, prepared.facts), prepared.awaited)
        remote = prepared
        if remote.grants is not None:
            await remote.grants.tidy()
        requested = target.reconcile_request not in (None, state.status.last_handled_reconcile_at)
        if state.stalled_on == (target.generation, remote.attempt) and not requested:
            return Result(state_outcome(state))  # nothing changed since it was judged impossible
        outcome = await remote.run(remote_due=remote_due)
        # Handled: the pass got as far as the platform (a failure there is retried, and asks again).
        admitted.facts.handled_request = target.reconcile_request
        awaited = _grant_awaited(remote, outcome)
    except Exception as error:
        outcome, awaited = _failed(rt, target, state, admitted, error)
    terminal = outcome.kind is outcomes.Kind.STALLED and outcome.reason in TERMINAL_UNTIL_CHANGED
    state.stalled_on = (target.generation, remote.attempt) if terminal and remote is not None else None
    return Result(await finish(rt, target, state, outcome, admitted.facts), awaited)


def _grant_awaited(remote: RemotePass, outcome: Outcome) -> Awaited | None:
    """An OAuth object waiting for a person whose grant Secret does not exist yet: its creation
    (by `kubectl openconnectors authorize`, say) should end the wait at once."""
    inputs = remote.grants.inputs if remote.grants is not None else None
    waiting = outcome.reason in (Reason.AUTHORIZATION_REQUIRED, Reason.REAUTHENTICATION_REQUIRED)
    return Awaited(inputs.secret, existed=False) if inputs and waiting and not inputs.secret_exists else None


def _admit_spec(target: Target, state: ObjectState) -> ConnectorInstanceSpec | Ended:
    """The spec, or why the pass ends here."""
    try:
        spec = parse_spec(target.spec)
    except ValidationError as error:
        return Ended(outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: {describe(error)}"))
    if target.paused:
        # Nothing is read, called or written but the conditions; deletion is another handler's.
        return Ended(outcomes.paused(ready=state.ready))
    return spec


async def _withdraw_account_secrets(
    rt: Runtime,
    target: Target,
    state: ObjectState,
    cache: Mapping[Key, SecretMeta],
    spec: ConnectorInstanceSpec,
) -> None:
    """The account refuses the object (it no longer allows exporting its secrets, or no longer
    serves the namespace): a token Secret of the object's that renders the account secrets is
    deleted, or they would stay readable there (tenant-findings N15). It comes back, from the
    platform, once the account lets the object go on. The watch's copy says whether there is one."""
    template = spec.token_secret.template if spec.token_secret is not None else None
    if template is None or not template.include_account_secrets:
        return
    name = effective_token_secret(spec, target.name)
    seen = cache.get((target.namespace, name))
    if seen is None or not seen.managed or seen.owner_uid != target.uid:
        return
    try:
        await rt.secrets.delete_token(target.namespace, name, target.uid)
    except KubeError as error:  # the next pass of the refused object tries again
        logger.warning("token Secret %s/%s not deleted: HTTP %s", target.namespace, name, error.status)
        return
    message = f"The account no longer lets this object have its secrets: token Secret {name!r} deleted"
    state.events.append(("Warning", "SecretWithdrawn", message))


async def _admit_templates(admitted: Admitted, target: Target, state: ObjectState) -> Admitted | Ended:
    """The token Secret the spec asks for, its templates checked before any Secret is read or any
    call made. Only once the account and the host let the pass go on, and once per generation
    (domain/tokensecret.py), off the loop (`off_loop`): compiling costs CPU every object shares,
    and a pass of a generation already judged (a resync, the reconcile annotation, a Secret's
    change) would pay it again for nothing (tenant-findings N2). A refusal stands until the spec
    changes."""
    wanted, memory, generation = token_secret_shape(admitted.spec), state.templates, target.generation
    if wanted.sources and (memory is None or memory.generation != generation):  # compiles
        secret, state.templates = await off_loop(lambda: checked(wanted, memory, generation))
    else:
        secret, state.templates = checked(wanted, memory, generation)
    refusal = state.templates.refusal if state.templates is not None else None
    if refusal is not None:
        return Ended(
            outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: spec.tokenSecret.template: {refusal}")
        )
    return replace(admitted, secret=secret)


async def _admit_endpoint(
    rt: Runtime, target: Target, state: ObjectState, spec: ConnectorInstanceSpec
) -> Admitted | Ended:
    """Where the calls go and as whom, if the account, the operator's hosts and the instance this
    object already has allow it."""
    located, account = await locate(rt, spec, target.namespace)
    if account is not None and account.spec is not None and isinstance(located, Endpoint) and located.account:
        # Checked here, not in `endpoint`: a deletion must still find the account's secrets.
        located = feature_refusal(spec, located.account, account.spec) or located
    if isinstance(located, Refused):
        refused = outcomes.retrying if located.waiting else outcomes.stalled
        return Ended(refused(located.reason, located.message, ready=state.ready))
    settings = effective(rt, target, spec, located.api_url, _whose(located))
    moved = _moved(state, spec, settings)
    if moved is not None:
        # Without effective settings: status keeps where the instance lives (deletion reads it).
        return Ended(outcomes.stalled(Reason.INVALID_SPEC, moved))
    facts = Facts(effective=settings, observing=observe_only(spec))
    refusal = rt.hosts.refusal(settings.api_url)
    if refusal is not None:
        # Before any Secret is read or labelled: nothing of this object reaches a host not allowed.
        return Ended(outcomes.stalled(Reason.API_HOST_NOT_ALLOWED, host_refused_message(refusal)), facts)
    return Admitted(spec, TokenSecretSpec(), located, account, facts)


async def _prepare(
    rt: Runtime, target: Target, state: ObjectState, cache: Mapping[Key, SecretMeta], admitted: Admitted
) -> RemotePass | Ended:
    """Read the inputs and resolve the request; the remote part of the pass, ready to run."""
    spec, account, located = admitted.spec, admitted.account, admitted.located
    secrets = {n: await rt.read_secret(cache, target.namespace, n) for n in referenced_secrets(spec)}
    known: dict[str, SecretData | None] = {n: (v.data if v else None) for n, v in secrets.items()}
    if account is not None:
        # The account daemon reads and watches the account's Secret; its instances use its copy.
        known.update(account.secrets())
        credentials_secret = account.secret_label
    else:
        credentials_secret = located.secret_name
    inputs = resolve(spec, known, credentials_secret)
    oauth = (
        resolve_oauth(spec.oauth, known) if spec.oauth is not None and isinstance(inputs, Resolved) else None
    )
    if isinstance(oauth, Missing):
        inputs = oauth
    if isinstance(inputs, Missing):
        unseen = inputs.secret_name in secrets and secrets[inputs.secret_name] is None
        waiting = outcomes.retrying(Reason.WAITING_FOR_SECRET, inputs.message, ready=state.ready)
        return Ended(waiting, admitted.facts, Awaited(inputs.secret_name, existed=False) if unseen else None)
    if isinstance(inputs, TooLarge):
        return Ended(outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: {inputs.message}"), admitted.facts)
    gate = rt.gate(located.account, located.budget) if located.account else None
    # Whole Secrets, maybe big, are not held while the pass waits for the platform: only `inputs`.
    request = Request(
        spec, inputs, admitted.facts, admitted.settings.api_url, admitted.secret, gate, located.account,
        oauth if isinstance(oauth, OAuthInputs) else None,
    )  # fmt: skip
    return remote_pass(rt, target, state, cache, request)


def _failed(
    rt: Runtime, target: Target, state: ObjectState, admitted: Admitted, error: Exception
) -> tuple[Outcome, Awaited | None]:
    """What a failure of the pass's inputs or remote part means for the object."""
    match error:
        case TokenSecretConflict():
            outcome = outcomes.stalled(Reason.SECRET_CONFLICT, error.message)
            return outcome, Awaited(error.secret, existed=True)
        case errors.OpenConnectorsError():
            creating = admitted.facts.observed is None and state.status.instance_id is None
            outcome = classify(error, ready=state.ready, creating=creating, backoff=rt.backoff)
            if isinstance(error, errors.Unauthorized | errors.Forbidden) and _rotated(
                rt, target, admitted.located, admitted.account
            ):
                # The platform's secret reset is a hard cut-over: the new secrets may reach us a
                # moment after the old ones stopped working. Retried, not Stalled, for a grace period.
                outcome = outcomes.retrying(
                    outcome.reason,
                    f"{outcome.message}; the account secrets just changed, retrying",
                    ready=state.ready,
                )
            return outcome, None
        case KubeError():
            return classify(error, ready=state.ready, creating=False, backoff=rt.backoff), None
        case _:
            # A bug of ours: the traceback helps, and our own exceptions carry no secret values.
            logger.exception("reconcile of %s/%s failed", target.namespace, target.name)
            return classify(error, ready=state.ready, creating=False, backoff=rt.backoff), None


def _moved(state: ObjectState, spec: ConnectorInstanceSpec, now: Effective) -> str | None:
    """Why the spec now points away from the instance this object has (the CRD refuses such a
    change; an object stored before that rule, or a changed --default-account or
    --default-api-url, gets here), or None. Status written before a field existed says nothing."""
    status = state.status
    if status.instance_id is None:
        return None
    was = status.connector.key if status.connector is not None else None
    if was is not None and was != spec.connector_key:
        change = f"spec.connectorKey changed from {was!r} to {spec.connector_key!r}"
    elif status.api_url is not None and status.api_url != now.api_url:
        change = f"the platform URL changed from {status.api_url} to {now.api_url}"
    elif status.account is not None and status.account != now.account:
        change = f"the credentials changed from {status.account} to {now.account}"
    else:
        return None
    return (
        f"Invalid spec: {change}, but remote instance {status.instance_id} belongs to the old one and "
        "would be left behind. Revert the change, or delete this object (its deletionPolicy applies) "
        "and create a new one"
    )


def _rotated(rt: Runtime, target: Target, located: Endpoint, account: AccountState | None) -> bool:
    if account is not None:
        return account.rotated_recently()
    return rt.wakeups.changed_recently((located.secret_namespace, located.secret_name), ROTATION_GRACE)


def effective(
    rt: Runtime, target: Target, spec: ConnectorInstanceSpec, api_url: str, account: str | None = None
) -> Effective:
    return Effective(
        api_url=api_url,
        instance_name=effective_instance_name(spec, target.namespace, target.name),
        token_secret_name=effective_token_secret(spec, target.name),
        deletion_policy=effective_deletion_policy(spec).value,
        account=account,
    )


def _whose(located: Endpoint) -> str:
    """status.account: the account, or the object's own credentials Secret."""
    if located.account is not None:
        return located.account.status_name
    return f"Secret/{located.secret_name}"


def host_refused_message(refusal: str) -> str:
    return (
        f"Not calling the platform: {refusal}. Use an allowed spec.apiURL, or ask the platform team "
        "to add the host to the operator's --allowed-api-hosts"
    )


def state_outcome(state: ObjectState) -> Outcome:
    """The stalled outcome already in status, for a pass that has nothing new to try."""
    stalled = next((c for c in state.status.conditions or [] if c.type == ConditionType.STALLED), None)
    if stalled is None:
        return outcomes.stalled(Reason.RECONCILE_ERROR, "", ready=state.ready)
    return outcomes.stalled(Reason(stalled.reason), stalled.message, ready=state.ready)


# A retry this far away or more is written into status.nextAttemptAt: a backoff's first attempts
# (2 s, 4 s, ... 32 s) and the circuit's waits (15-30 s) are not, so that an outage costs no
# status write per attempt until the attempts are a minute apart.
NEXT_ATTEMPT_SHOWN = 60.0


async def finish(rt: Runtime, target: Target, state: ObjectState, outcome: Outcome, facts: Facts) -> Outcome:
    """Write the status transition, only what changed (an idle pass writes nothing).

    The passes' memory is authoritative: it keeps the new status even when the write fails, so
    the next pass makes no second platform call for work already done. The patch is taken against
    what was last written, so a failed write is repeated in full by the next one. A failed write
    is an outcome like any other (retried with backoff), never an exception that would make the
    scheduler repeat the pass after its failure delay."""
    news = outcome.kind is outcomes.Kind.RETRYING and _schedule_retry(rt, target, state, outcome, facts)
    new, _ = status_after(state.status, outcome, facts, target.generation, rt.clock())
    _note_transitions(state, outcome)
    state.status = new
    patch = merge_patch(stored(state.written), stored(new))
    if not news and patch.keys() == {"nextAttemptAt"}:
        patch = {}  # the time written stays: see _schedule_retry
    if not patch:
        # The same status as written: keep one copy, not two (per object, for as long as it exists).
        state.status = state.written
        return outcome
    try:
        if await rt.status.patch(target.namespace, target.name, patch):
            state.written = new
    except KubeError as error:
        logger.warning("status of %s/%s not written: HTTP %s", target.namespace, target.name, error.status)
        return outcomes.retrying(
            Reason.KUBERNETES_ERROR,
            f"The status could not be written: HTTP {error.status} {error.reason}",
            ready=outcome.ready,
        )
    return outcome


def _schedule_retry(rt: Runtime, target: Target, state: ObjectState, outcome: Outcome, facts: Facts) -> bool:
    """Count the failure (the delay is the scheduling's, `state.retry_delay`) and say when the next
    attempt is, if a minute or more away. Whether that time is news worth a status write of its
    own: while the backoff grows (each such write at least doubles the wait, so an outage costs a
    few writes per object, not one per attempt), or when none is written yet. At the backoff's
    cap, or for a wait the platform asks for again, the time written stays unless the status
    changes anyway; `kubectl openconnectors why` then says the attempts go on at that pace."""
    key = (target.namespace, target.name)
    attempt = rt.retries.attempts(key)
    state.retry_delay = rt.retries.failed(key, outcome)
    if state.retry_delay < NEXT_ATTEMPT_SHOWN:
        return False
    facts.next_attempt_at = in_seconds(state.retry_delay)
    growing = outcome.retry_after is None and rt.backoff.base * 2 ** min(attempt, 16) < rt.backoff.cap
    return growing or state.written.next_attempt_at is None


def _note_transitions(state: ObjectState, outcome: Outcome) -> None:
    """Queue Events for the transitions a human wants to hear about: stalled, and ready again."""
    stalled = next((c for c in state.status.conditions or [] if c.type == ConditionType.STALLED), None)
    if outcome.kind is outcomes.Kind.STALLED and (
        stalled is None or stalled.status != "True" or stalled.reason != outcome.reason
    ):
        state.events.append(("Warning", outcome.reason.value, outcome.message))
    if outcome.ready and not state.ready and state.status.conditions:
        # Recovery only: a first creation has its own "Created" event already.
        state.events.append(("Normal", Reason.AVAILABLE.value, "The instance is ready"))
