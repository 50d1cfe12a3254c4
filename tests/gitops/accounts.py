"""ConnectorAccount and ClusterConnectorAccount objects in every state the health checks must read.

An account's conditions are the same four as an instance's, made by the operator's own
`domain.outcome.conditions()` from an outcome: Ready when the credentials were verified with one
authenticated call; Reconciling (retried) while its Secret is missing, while the circuit breaker
is open (`CircuitOpen`, with Ready False) and for a 401 in the grace period after a credentials
change; Stalled with `CredentialsRejected` when the platform refuses them. `observedGeneration`
advances when an outcome handled the generation, as for instances; the API server bumps the
generation when deletion starts, and an account in use stays (finalizer) until its instances are
gone. Both kinds are built alike; `STATES` names them, `state(kind, name)` builds a fresh copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from connector_operator.api.names import ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND, FINALIZER, GROUP, VERSION
from connector_operator.api.status import Condition, Reason
from connector_operator.domain.outcome import Outcome, conditions, retrying, success
from connector_operator.openconnectors import errors
from connector_operator.reconciler.outcomes import classify

Object = dict[str, Any]

KINDS = (ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND)
NAMESPACE = "team-crm"
T_CREATED, T_FIRST, T_SECOND, T_DELETED = (
    "2026-03-02T09:00:00Z",
    "2026-03-02T09:00:01Z",
    "2026-03-02T09:05:00Z",
    "2026-03-02T10:00:00Z",
)


def verified() -> Outcome:
    return success("The account secrets were verified with the platform")


def waiting_for_secret() -> Outcome:
    return retrying(
        Reason.WAITING_FOR_SECRET,
        "Secret 'open-connectors-operator/oc-platform' (account credentials) does not exist",
        ready=False,
    )


def circuit_open() -> Outcome:
    return retrying(
        Reason.CIRCUIT_OPEN,
        "The platform failed repeatedly (5 server errors in a row); calls wait 15 s for a probe",
        ready=False,
        retry_after=15.0,
    )


def credentials_rejected() -> Outcome:
    return classify(errors.Unauthorized(401, "Unauthorized"), ready=False, creating=False)


def rotation_grace() -> Outcome:
    return retrying(
        Reason.CREDENTIALS_REJECTED,
        "The platform refused the new account secrets (HTTP 401); a rotation takes a moment to reach "
        "everyone: retrying",
        ready=False,
    )


def created(kind: str) -> Object:
    """An account as the API server stores it: its status defaulted, no write of the operator yet."""
    secret = {"name": "oc-platform"} | (
        {"namespace": "open-connectors-operator"} if kind != ACCOUNT_KIND else {}
    )
    metadata: Object = {
        "name": "shared",
        "uid": "0b4e4f1a-7c3d-4d6e-9a51-3f2b1c0d9e8f",
        "generation": 1,
        "resourceVersion": "2001",
        "creationTimestamp": T_CREATED,
        "finalizers": [FINALIZER],
    }
    if kind == ACCOUNT_KIND:
        metadata["namespace"] = NAMESPACE
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "credentialsSecretRef": secret,
            "requestBudget": {"requestsPerSecond": 5, "burst": 10, "maxInFlight": 4},
        },
        "status": {"observedGeneration": 0},
    }


def passed(obj: Object, outcome: Outcome, at: str) -> Object:
    """After one pass of the account's daemon with `outcome`."""
    new = copy.deepcopy(obj)
    generation = new["metadata"]["generation"]
    status = new["status"]
    previous = [Condition.model_validate(c) for c in status.get("conditions", [])]
    status["conditions"] = [
        c.model_dump(by_alias=True, exclude_none=True) for c in conditions(outcome, generation, previous, at)
    ]
    if outcome.handled and "deletionTimestamp" not in new["metadata"]:
        status["observedGeneration"] = generation
    return new


def deletion_requested(obj: Object) -> Object:
    """`kubectl delete` of an account in use: its finalizer holds it, the generation is bumped."""
    new = copy.deepcopy(obj)
    new["metadata"]["deletionTimestamp"] = T_DELETED
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    new["metadata"]["generation"] += 1
    return new


def _verified(kind: str) -> Object:
    return passed(created(kind), verified(), T_FIRST)


STATES: dict[str, Callable[[str], Object]] = {
    "new": created,
    "verified": _verified,
    "waiting_for_secret": lambda kind: passed(created(kind), waiting_for_secret(), T_FIRST),
    # Before the first verification, and after it (generation handled, the platform fails now).
    "circuit_open_new": lambda kind: passed(created(kind), circuit_open(), T_FIRST),
    "circuit_open_after_verified": lambda kind: passed(_verified(kind), circuit_open(), T_SECOND),
    "rotation_grace": lambda kind: passed(_verified(kind), rotation_grace(), T_SECOND),
    "credentials_rejected": lambda kind: passed(created(kind), credentials_rejected(), T_FIRST),
    "deleting_in_use": lambda kind: deletion_requested(_verified(kind)),
}


def state(kind: str, name: str) -> Object:
    """A fresh copy of an account of `kind` in state `name`."""
    return STATES[name](kind)
