"""ConnectorInstance objects in every state the operator writes, shared by the GitOps health tests.

Outcomes come from the operator itself: `success()`, `retrying()` and `stalled()` as the handlers
call them, and `reconciler.outcomes.classify()` for platform failures; messages for missing Secrets
come from `domain.inputs.resolve()`. Status is the operator's own transition,
`domain.transition.status_after()` (test_objects.py checks that the operator's writers write it):

- a reconcile pass (`reconciled`) writes all four conditions for `metadata.generation` and
  advances `status.observedGeneration` only when the outcome handled the generation (applied it,
  or judged it impossible); a retried outcome leaves it behind;
- the deletion handler (`deletion_reported`, `deleting=True`) writes the conditions only;
- the API server bumps `metadata.generation` on a spec change and again when it sets
  `metadata.deletionTimestamp` on an object held by a finalizer.

`STATES` names every state the health checks must get right; `state(name)` builds a fresh copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from connector_operator.api.names import FINALIZER, GROUP, KIND, VERSION
from connector_operator.api.spec import parse_spec
from connector_operator.api.status import Reason
from connector_operator.domain.inputs import Missing, resolve
from connector_operator.domain.outcome import Outcome, paused, retrying, stalled, success
from connector_operator.domain.transition import Facts, parse_status, status_after, stored
from connector_operator.openconnectors import errors
from connector_operator.reconciler.deletion import release_command
from connector_operator.reconciler.outcomes import classify

Object = dict[str, Any]

NAMESPACE = "team-crm"
NAME = "acme-closeio"
UID = "5f0c6a4e-2b1d-4c39-9d1e-0a7f3c2b9e11"
ACCOUNT = "open-connectors-account"
TOKEN_SECRET = "acme-closeio-token"
SPEC: dict[str, Any] = {
    "connectorKey": "closeio",
    "credentialsSecretRef": {"name": ACCOUNT},
    "configuration": [
        {"key": "username", "valueFrom": {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}}
    ],
    "tokenSecret": {"name": TOKEN_SECRET},
    "deletionPolicy": "Delete",
}

T_CREATED = "2026-03-02T09:00:00Z"
T_FIRST = "2026-03-02T09:00:02Z"
T_SECOND = "2026-03-02T09:10:00Z"
T_THIRD = "2026-03-02T09:20:00Z"
T_DELETED = "2026-03-02T10:00:00Z"


def _missing(secrets: dict[str, dict[str, str]]) -> str:
    """The operator's message for an input Secret that is not there."""
    result = resolve(parse_spec(SPEC), secrets, ACCOUNT)
    if not isinstance(result, Missing):
        raise TypeError(f"expected a missing Secret, got {result!r}")
    return result.message


# Outcomes, built as the handlers build them (reconcile.py, deletion.py, errors.py).
def waiting_for_secret(*, ready: bool) -> Outcome:
    account = {ACCOUNT: {"userSecret": "u", "organizationSecret": "o"}}
    return retrying(Reason.WAITING_FOR_SECRET, _missing(account), ready=ready)


def api_unavailable(*, ready: bool) -> Outcome:
    return classify(errors.ServerError(503, "Service Unavailable"), ready=ready, creating=False)


def rate_limited(*, ready: bool) -> Outcome:
    error = errors.RateLimited(429, "Too Many Requests", retry_after=30.0)
    return classify(error, ready=ready, creating=False)


def configuration_rejected() -> Outcome:
    error = errors.BadRequest(400, "Invalid configuration: username is required")
    return classify(error, ready=False, creating=True)


def credentials_rejected(*, ready: bool) -> Outcome:
    return classify(errors.Unauthorized(401, "Unauthorized"), ready=ready, creating=False)


def secret_conflict() -> Outcome:
    return stalled(
        Reason.SECRET_CONFLICT,
        f"Secret {TOKEN_SECRET!r} exists and is not managed by this ConnectorInstance; "
        "delete or rename it, or set spec.tokenSecret.name to another name",
    )


def instance_invalid() -> Outcome:
    return stalled(
        Reason.INSTANCE_INVALID,
        "The platform reports instance 471196 as invalid; "
        "re-authenticate it on the platform or update its configuration",
    )


def deletion_blocked() -> Outcome:
    return stalled(
        Reason.DELETION_BLOCKED,
        f"Cannot delete the remote instance: {_missing({})}. Restore the Secret, or release this "
        f"object and leave the remote instance in place with: {release_command(NAMESPACE, NAME)}",
        ready=False,
    )


def deletion_credentials_rejected() -> Outcome:
    rejected = classify(errors.Unauthorized(401, "Unauthorized"), ready=False, creating=False)
    return stalled(
        rejected.reason,
        f"{rejected.message}. To release this object without deleting the remote "
        f"instance: {release_command(NAMESPACE, NAME)}",
    )


# Objects and what happens to them.
def created(generation: int = 1) -> Object:
    """A ConnectorInstance as the API server stores it, before the operator wrote any status."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "uid": UID,
            "generation": generation,
            "resourceVersion": "1001",
            "creationTimestamp": T_CREATED,
            "finalizers": [FINALIZER],
        },
        "spec": copy.deepcopy(SPEC),
    }


def _transition(obj: Object, outcome: Outcome, at: str, *, deleting: bool) -> Object:
    new = copy.deepcopy(obj)
    previous = parse_status(new.get("status"))
    status, _ = status_after(previous, outcome, Facts(), new["metadata"]["generation"], at, deleting=deleting)
    new["status"] = stored(status)
    return new


def reconciled(obj: Object, outcome: Outcome, at: str) -> Object:
    """After one reconcile pass with `outcome` (and nothing new learned of the remote instance)."""
    return _transition(obj, outcome, at, deleting=False)


def spec_changed(obj: Object) -> Object:
    """A user edited the spec: the API server bumps the generation; status is unchanged."""
    new = copy.deepcopy(obj)
    new["metadata"]["generation"] += 1
    new["spec"]["tags"] = [*new["spec"].get("tags", []), "crm"]
    return new


def deletion_requested(obj: Object) -> Object:
    """`kubectl delete`: the finalizer holds the object; deletionTimestamp set, generation bumped."""
    new = copy.deepcopy(obj)
    new["metadata"]["deletionTimestamp"] = T_DELETED
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    new["metadata"]["generation"] += 1
    return new


def deletion_reported(obj: Object, outcome: Outcome, at: str) -> Object:
    """A failed deletion attempt, as the deletion handler reports it (conditions only)."""
    return _transition(obj, outcome, at, deleting=True)


def adoption_conflict() -> Outcome:
    return stalled(
        Reason.ADOPTION_CONFLICT,
        "Remote instance 4711 is tagged as another ConnectorInstance's: an instance is never shared. "
        "Name another instance, or delete the other object first",
    )


def pause(obj: Object) -> Object:
    """The user sets the pause annotation (no generation change: metadata only)."""
    paused_obj = copy.deepcopy(obj)
    paused_obj["metadata"].setdefault("annotations", {})["openconnectors.io/paused"] = "true"
    return paused_obj


def _ready() -> Object:
    return reconciled(created(), success(), T_FIRST)


def _ready_then_changed() -> Object:
    return spec_changed(_ready())


def _stalled_on_configuration() -> Object:
    return reconciled(created(), configuration_rejected(), T_FIRST)


STATES: dict[str, Callable[[], Object]] = {
    # Ready.
    "ready": _ready,
    "ready_after_spec_change": lambda: reconciled(_ready_then_changed(), success(), T_SECOND),
    "ready_after_transient_failure": lambda: reconciled(
        reconciled(_ready_then_changed(), api_unavailable(ready=True), T_SECOND), success(), T_THIRD
    ),
    # Not handled yet: as the API server serves a new object (the CRD defaults
    # `status.observedGeneration` to 0), and as it would without that default.
    "new": lambda: {**created(), "status": {"observedGeneration": 0}},
    "new_without_status": created,
    "generation_ahead_of_observed": _ready_then_changed,
    "stalled_then_spec_changed": lambda: spec_changed(_stalled_on_configuration()),
    # Waiting for an input Secret (retried as soon as it appears).
    "waiting_for_secret_new": lambda: reconciled(created(), waiting_for_secret(ready=False), T_FIRST),
    "waiting_for_secret_after_spec_change": lambda: reconciled(
        _ready_then_changed(), waiting_for_secret(ready=True), T_SECOND
    ),
    # Transient platform failures, retried with backoff or after Retry-After.
    "api_unavailable_creating": lambda: reconciled(created(), api_unavailable(ready=False), T_FIRST),
    "api_unavailable_after_update_ready_true": lambda: reconciled(
        _ready_then_changed(), api_unavailable(ready=True), T_SECOND
    ),
    "rate_limited_after_update_ready_true": lambda: reconciled(
        _ready_then_changed(), rate_limited(ready=True), T_SECOND
    ),
    "rate_limited_on_resync_ready_true": lambda: reconciled(_ready(), rate_limited(ready=True), T_SECOND),
    # Stalled: a human must act.
    "stalled_configuration_rejected": _stalled_on_configuration,
    "stalled_credentials_rejected_ready_true": lambda: reconciled(
        _ready_then_changed(), credentials_rejected(ready=True), T_SECOND
    ),
    "stalled_secret_conflict": lambda: reconciled(created(), secret_conflict(), T_FIRST),
    "stalled_instance_invalid": lambda: reconciled(_ready(), instance_invalid(), T_SECOND),
    "stalled_adoption_conflict": lambda: reconciled(created(), adoption_conflict(), T_FIRST),
    # Paused by the annotation (issue 11): Ready as it was, nothing applied while it is set.
    "paused": lambda: reconciled(pause(_ready()), paused(ready=True), T_SECOND),
    "paused_then_spec_changed": lambda: reconciled(
        spec_changed(pause(_ready())), paused(ready=True), T_SECOND
    ),
    # Being deleted.
    "deleting": lambda: deletion_requested(_ready()),
    "deleting_retrying": lambda: deletion_reported(
        deletion_requested(_ready()), api_unavailable(ready=False), T_THIRD
    ),
    "deleting_after_stall": lambda: deletion_requested(_stalled_on_configuration()),
    "deletion_blocked": lambda: deletion_reported(deletion_requested(_ready()), deletion_blocked(), T_THIRD),
    "deletion_credentials_rejected": lambda: deletion_reported(
        deletion_requested(_ready()), deletion_credentials_rejected(), T_THIRD
    ),
}


def state(name: str) -> Object:
    """A fresh copy of the object in state `name`."""
    return STATES[name]()
