"""The one status transition: from the previous status, an outcome and what a pass learned, to the
next status and the minimal patch that writes it.

Every writer of `ConnectorInstance.status` goes through `status_after`: the reconcile pass, the
deletion handler, and the GitOps tests that build objects in every state. It is pure (the clock is
a parameter), so those tests check the operator's own transition instead of a copy of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import ValidationError

from connector_operator.api.status import (
    Authorization,
    ConditionType,
    ConnectorFacts,
    ConnectorInstanceStatus,
)
from connector_operator.domain.outcome import Outcome, conditions


@dataclass(frozen=True)
class Effective:
    """What the spec resolves to once defaults are applied; recorded on every pass."""

    api_url: str
    instance_name: str
    token_secret_name: str
    deletion_policy: str
    account: str | None = None  # whose credentials: see ConnectorInstanceStatus.account


@dataclass(frozen=True)
class Observed:
    """The remote instance as last seen (the token itself only as a digest)."""

    instance_id: int
    token_digest: str
    valid: bool
    disabled: bool
    connector: ConnectorFacts


@dataclass
class Facts:
    """What a pass learned, filled in as it goes: a failure later in the pass still records it."""

    effective: Effective | None = None
    applied_digest: str | None = None  # a request the platform accepted in this pass
    observed: Observed | None = None
    # Digests in status made the old way (keyed with the UID) that still match: the same values
    # keyed the new way, written without a platform call (so lastSyncTime stays).
    rekeyed_applied_digest: str | None = None
    rekeyed_token_digest: str | None = None
    # ObserveOnly's dry run (`status.plannedAction`); under Full a pass with effective settings
    # removes it.
    observing: bool = False
    planned_action: str | None = None
    handled_request: str | None = None  # the reconcile-requested-at value this pass handled
    next_attempt_at: str | None = None  # a retry's time, when a minute or more away
    consent_url: str | None = None  # OAuth: where a person authorizes (status.authorization.url)
    grant_digest: str | None = None  # OAuth: the grant this pass used or refused


class Transition(NamedTuple):
    status: ConnectorInstanceStatus
    # JSON merge patch (RFC 7386) of `status`: only what changed; empty when nothing did.
    patch: dict[str, Any]


def status_after(
    previous: ConnectorInstanceStatus,
    outcome: Outcome,
    facts: Facts,
    generation: int,
    now: str,
    *,
    deleting: bool = False,
) -> Transition:
    """The status after a pass with `outcome` on `generation`.

    All four conditions describe `generation`. `observedGeneration` advances only when the outcome
    handled the generation (applied it, or judged it impossible without a change), and never while
    deleting: the API server bumps the generation when deletion starts, and that bump is not a spec
    the operator applies. A retried outcome leaves it behind, which is how kstatus tells "in progress".
    """
    update: dict[str, Any] = {
        "conditions": conditions(outcome, generation, previous.conditions, now),
        "next_attempt_at": facts.next_attempt_at,
    }
    if outcome.handled and not deleting:
        update["observed_generation"] = generation
    if (effective := facts.effective) is not None:
        update.update(
            api_url=effective.api_url,
            instance_name=effective.instance_name,
            token_secret_name=effective.token_secret_name,
            deletion_policy=effective.deletion_policy,
            account=effective.account,
        )
    if effective is not None and not facts.observing:
        update.update(planned_action=None)
    if facts.planned_action is not None:
        update.update(planned_action=facts.planned_action)
    update.update(_optional(facts))
    if facts.applied_digest is not None:
        update.update(applied_digest=facts.applied_digest, last_sync_time=now)
    if (observed := facts.observed) is not None:
        update.update(
            instance_id=observed.instance_id,
            token_digest=observed.token_digest,
            valid=observed.valid,
            disabled=observed.disabled,
            connector=observed.connector,
        )
    authorization = _authorization(previous.authorization, outcome, facts)
    if authorization != previous.authorization:
        update.update(authorization=authorization)
    status = previous.model_copy(update=update)
    return Transition(status, merge_patch(stored(previous), stored(status)))


def _optional(facts: Facts) -> dict[str, Any]:
    """The fields a pass writes only when it has something to say."""
    fields = {
        "last_handled_reconcile_at": facts.handled_request,
        "applied_digest": facts.rekeyed_applied_digest,
        "token_digest": facts.rekeyed_token_digest,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _authorization(before: Authorization | None, outcome: Outcome, facts: Facts) -> Authorization | None:
    """status.authorization: the consent URL while a person must act (kept through retries, gone
    once Ready or once a grant is used), and the digest of the last grant used."""
    if facts.consent_url is None and facts.grant_digest is None and not (outcome.ready and before):
        return before
    before = before or Authorization()
    # A grant used in this pass turns the state: the URL before it carries the old one.
    stale = outcome.ready or facts.grant_digest is not None
    url = facts.consent_url if facts.consent_url is not None else (None if stale else before.url)
    digest = facts.grant_digest or before.grant_digest
    return Authorization(url=url, grant_digest=digest) if url or digest else None


def stored(status: ConnectorInstanceStatus) -> dict[str, Any]:
    """The status as the API server stores it (a merge patch drops nulls, so they are left out)."""
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_status(raw: Mapping[str, Any] | None) -> ConnectorInstanceStatus:
    """The typed status of a stored object. Fields written by others (kopf's own) are ignored; a
    status the schema let through but the model cannot read counts as empty and is rewritten."""
    try:
        return ConnectorInstanceStatus.model_validate(raw or {})
    except ValidationError:
        return ConnectorInstanceStatus()


def is_ready(status: ConnectorInstanceStatus) -> bool:
    return any(c.type == ConditionType.READY and c.status == "True" for c in status.conditions or [])


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns `old` into `new`: changed keys, and null for removed ones."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            if nested := merge_patch(before, value):
                patch[key] = nested
        elif before != value:
            patch[key] = value
    patch.update(dict.fromkeys(old.keys() - new.keys()))
    return patch
