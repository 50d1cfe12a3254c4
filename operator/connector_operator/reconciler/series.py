"""What an object's body says to its per-object series and to the time-to-ready histogram.

Read from the object as the API server holds it (metrics/objects.py says why). A status is
written by the operator alone where the admission policies are on; where they are off a tenant
with `patch` on the status subresource can write anything, so only the known condition types and
statuses count, a reason or account the operator never writes is `Other`, and every label value
is bounded.
"""

from __future__ import annotations

import datetime
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator import metrics
from connector_operator.api.meta import Meta
from connector_operator.api.status import ConditionType, Reason
from connector_operator.domain.accounts import AccountKey
from connector_operator.metrics.objects import AccountId, Condition, InstanceRow, condition
from connector_operator.openconnectors.budget import Gates

Key = tuple[str, str]

TYPES = frozenset(ConditionType)
STATUSES = frozenset({"True", "False", "Unknown"})
REASONS = frozenset(Reason)
OTHER = "Other"  # a reason or account the operator never writes: a forged status
# How status.account names an account (ConnectorInstanceStatus.account): kind, then a DNS name.
ACCOUNT = re.compile(
    r"(ConnectorAccount|ClusterConnectorAccount|Secret)/[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?"
)
LABEL_BOUND = 128  # a connector key is a short word; the CRD bounds it, a forged status does not


def _label(value: Any) -> str:
    return sys.intern(value[:LABEL_BOUND]) if isinstance(value, str) else ""


def _reason(value: Any) -> str:
    """The operator's reasons as they are, anything else `Other`: a new reason per write would
    be a new series per write."""
    return sys.intern(value) if isinstance(value, str) and value in REASONS else OTHER


def _account(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return sys.intern(value) if ACCOUNT.fullmatch(value) else OTHER


def _status(body: Mapping[str, Any]) -> Mapping[str, Any]:
    status = body.get("status")
    return status if isinstance(status, Mapping) else {}


def _known(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The known conditions, once each, in the order written."""
    found: dict[str, Mapping[str, Any]] = {}
    raw = status.get("conditions")
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, Mapping):
            continue
        type_, state = item.get("type"), item.get("status")
        if (
            isinstance(type_, str)
            and type_ in TYPES
            and isinstance(state, str)
            and state in STATUSES
            and type_ not in found
        ):
            found[type_] = item
        if len(found) == len(TYPES):
            break
    return list(found.values())


def conditions(status: Mapping[str, Any]) -> tuple[Condition, ...]:
    return _conditions(_known(status))


def _conditions(known: list[Mapping[str, Any]]) -> tuple[Condition, ...]:
    return tuple(condition(c["type"], c["status"], _reason(c.get("reason"))) for c in known)


def instance_row(body: Mapping[str, Any]) -> InstanceRow:
    status = _status(body)
    spec = body.get("spec")
    instance_id = status.get("instanceID")
    valid, disabled = status.get("valid"), status.get("disabled")
    known = _known(status)
    return InstanceRow(
        conditions=_conditions(known),
        transitions=tuple(_time(c.get("lastTransitionTime")) for c in known),
        connector=_label(spec.get("connectorKey")) if isinstance(spec, Mapping) else "",
        instance_id=str(instance_id) if isinstance(instance_id, int) else "",
        account=_account(status.get("account")),
        valid=valid if isinstance(valid, bool) else None,
        disabled=disabled if isinstance(disabled, bool) else None,
    )


def observe_instance(key: Key, body: Mapping[str, Any], ready: Readiness) -> None:
    """A watch event of a ConnectorInstance that exists: its series, and its time to ready. (Its
    DELETED event goes to `forget_instance` and `Readiness.forget`.)"""
    metrics.SERIES.set_instance(key, instance_row(body))
    ready.observe(key, body)


def budget_waits(gates: Gates) -> Iterator[tuple[AccountId, float]]:
    """Each account's budget waits, as its series names it."""
    for key, seconds in gates.waits():
        if isinstance(key, AccountKey):
            yield (key.kind.value, key.namespace, key.name), seconds


def observe_account(account: AccountId, event_type: str | None, body: Mapping[str, Any]) -> None:
    if event_type == "DELETED":
        metrics.SERIES.forget_account(account)
    else:
        metrics.SERIES.set_account(account, conditions(_status(body)))


@dataclass(slots=True)
class _Pending:
    cause: str
    since: float  # wall clock


@dataclass
class Readiness:
    """Objects not yet Ready at a generation the operator has not handled, since when, and why.

    A wait starts when an event shows a generation the status has not caught up with: at
    creation (counted from creationTimestamp) or after a spec change (from when this process saw
    it: the API server keeps no time of a spec change). It ends at the first event showing Ready
    for the object's generation; a change while one is pending keeps the first start, since what
    a team waited for is the whole wait. An object that turns not Ready at a generation already
    handled (the platform invalidated it) starts no wait: that is an outage, not a time to ready.
    Only waiting objects are kept."""

    pending: dict[Key, _Pending] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def observe(self, key: Key, body: Mapping[str, Any]) -> None:
        meta = Meta.of(body)
        status = _status(body)
        if meta.deleting:
            self.forget(key)
        elif _ready_at(status, meta.generation):
            waited = self.pending.pop(key, None)
            if waited is not None:
                metrics.TIME_TO_READY.labels(waited.cause).observe(max(0.0, self.clock() - waited.since))
        elif key not in self.pending and status.get("observedGeneration") != meta.generation:
            self.pending[key] = self._start(body, meta.generation)

    def _start(self, body: Mapping[str, Any], generation: int) -> _Pending:
        created = _timestamp(body) if generation <= 1 else None
        if created is None:
            return _Pending("create" if generation <= 1 else "update", self.clock())
        return _Pending("create", created)

    def forget(self, key: Key) -> None:
        self.pending.pop(key, None)


def _ready_at(status: Mapping[str, Any], generation: int) -> bool:
    raw = status.get("conditions")
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, Mapping) and item.get("type") == ConditionType.READY:
            seen = item.get("observedGeneration", status.get("observedGeneration"))
            return item.get("status") == "True" and seen == generation
    return False


def _timestamp(body: Mapping[str, Any]) -> float | None:
    meta = body.get("metadata")
    return _time(meta.get("creationTimestamp") if isinstance(meta, Mapping) else None)


def _time(raw: Any) -> float | None:
    """An RFC 3339 time as Unix seconds; None for anything else."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        return datetime.datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None
