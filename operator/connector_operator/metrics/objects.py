"""Per-object series: each ConnectorInstance's and account's conditions, identity and platform state.

The rows come from the objects as the API server holds them (every watch event of an object,
the operator's own status writes included), not from what a pass of this process decided. So a
series says what the object's status says, a restarted operator shows every object again as soon
as kopf has listed them (before any pass), and a series goes with the DELETED event of its object.

    oco_connectorinstance_condition{namespace,name,type,status,reason}   1 per condition
    oco_connectorinstance_condition_last_transition_timestamp_seconds{namespace,name,type}
                                                     when each condition last changed status
    oco_connectorinstance_info{namespace,name,connector,instance_id,account}   1
    oco_platform_instance_valid{namespace,name}         1/0, from the periodic platform check
    oco_platform_instance_disabled{namespace,name}      1/0, likewise
    oco_connectorinstance_drift_corrections_total{namespace,name}   DriftCorrected repairs
    oco_account_condition{kind,namespace,name,type,status,reason}   1 per condition
    oco_account_budget_wait_seconds_total{kind,namespace,name}      seconds calls waited for the
                                                     account's request budget (slots and tokens)
    oco_object_series                                 per-object series in the last scrape
    oco_object_series_dropped_total                   per-object series left out by the cap

The cap bounds one scrape: objects are exported whole, in the order the operator first saw them,
until the next would pass `max_series`; the rest are counted as dropped (at every scrape, so a
cap that is hit shows as a rate). The first objects keep their series, so a dashboard of them
stays whole while the install grows past the cap.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Key = tuple[str, str]  # (namespace, name)
AccountId = tuple[str, str, str]  # (kind, namespace, name); namespace "" for the cluster kind
Condition = tuple[str, str, str]  # (type, status, reason)
BudgetWaits = Callable[[], Iterable[tuple[AccountId, float]]]

DEFAULT_MAX_SERIES = 50_000


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """What one ConnectorInstance's series say; the strings are interned (objects share reasons)."""

    conditions: tuple[Condition, ...]
    transitions: tuple[float | None, ...]  # each condition's lastTransitionTime (Unix seconds)
    connector: str
    instance_id: str
    account: str
    valid: bool | None
    disabled: bool | None

    @property
    def size(self) -> int:
        known = sum(1 for at in self.transitions if at is not None)
        return len(self.conditions) + known + 1 + (self.valid is not None) + (self.disabled is not None)


def condition(type_: str, status: str, reason: str) -> Condition:
    return (sys.intern(type_), sys.intern(status), sys.intern(reason))


class _Families:
    """The metric families of one scrape, filled object by object."""

    def __init__(self) -> None:
        where, account = ["namespace", "name"], ["kind", "namespace", "name"]
        self.condition = GaugeMetricFamily(
            "oco_connectorinstance_condition",
            "ConnectorInstance conditions as in status: 1 for each current condition.",
            labels=[*where, "type", "status", "reason"],
        )
        self.transition = GaugeMetricFamily(
            "oco_connectorinstance_condition_last_transition_timestamp_seconds",
            "When each ConnectorInstance condition last changed status (its lastTransitionTime).",
            labels=[*where, "type"],
        )
        self.info = GaugeMetricFamily(
            "oco_connectorinstance_info",
            "ConnectorInstance identity: its connector, remote instance ID and account.",
            labels=[*where, "connector", "instance_id", "account"],
        )
        self.valid = GaugeMetricFamily(
            "oco_platform_instance_valid",
            "1 if the platform reported the remote instance valid at the last check, else 0.",
            labels=where,
        )
        self.disabled = GaugeMetricFamily(
            "oco_platform_instance_disabled",
            "1 if the platform reported the remote instance disabled at the last check, else 0.",
            labels=where,
        )
        self.drift = CounterMetricFamily(
            "oco_connectorinstance_drift_corrections",
            "Remote instances changed outside Kubernetes and restored to the spec (DriftCorrected).",
            labels=where,
        )
        self.account_condition = GaugeMetricFamily(
            "oco_account_condition",
            "ConnectorAccount and ClusterConnectorAccount conditions: 1 for each current condition.",
            labels=[*account, "type", "status", "reason"],
        )
        self.budget_wait = CounterMetricFamily(
            "oco_account_budget_wait_seconds",
            "Seconds calls waited for the account's request budget (in-flight slots and tokens).",
            labels=account,
        )

    def all(self) -> tuple[Metric, ...]:
        return (
            self.condition,
            self.transition,
            self.info,
            self.valid,
            self.disabled,
            self.drift,
            self.account_condition,
            self.budget_wait,
        )


class ObjectSeries(Collector):
    """The rows of every object, and their export at scrape time within the series cap."""

    def __init__(self, enabled: bool = True, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self.enabled, self.max_series = enabled, max_series
        self.instances: dict[Key, InstanceRow] = {}
        self.accounts: dict[AccountId, tuple[Condition, ...]] = {}
        self.drift: dict[Key, int] = {}
        self.budget_waits: BudgetWaits = tuple
        self.exported = 0
        self.dropped = 0

    def configure(self, enabled: bool, max_series: int) -> None:
        self.enabled, self.max_series = enabled, max_series
        if not enabled:
            self.clear()

    def clear(self) -> None:
        """No object's series: a copy of the operator outranked by another (peering) sees no
        events, and what it last saw would go stale; kopf lists every object again on resuming."""
        self.instances.clear()
        self.accounts.clear()
        self.drift.clear()

    def set_instance(self, key: Key, row: InstanceRow) -> None:
        if self.enabled:
            self.instances[key] = row

    def forget_instance(self, key: Key) -> None:
        self.instances.pop(key, None)
        self.drift.pop(key, None)

    def drift_corrected(self, key: Key) -> None:
        if self.enabled and key in self.instances:
            self.drift[key] = self.drift.get(key, 0) + 1

    def set_account(self, account: AccountId, conditions: tuple[Condition, ...]) -> None:
        if self.enabled:
            self.accounts[account] = conditions

    def forget_account(self, account: AccountId) -> None:
        self.accounts.pop(account, None)

    def describe(self) -> Iterator[Metric]:
        """The families without samples: what a registry (or a dashboard's linter) may expect."""
        yield from _Families().all()
        yield from self._totals(0)

    def collect(self) -> Iterator[Metric]:
        if not self.enabled:
            return
        families = _Families()
        room = self.max_series
        dropped = 0
        for key, row in list(self.instances.items()):
            size = row.size + (key in self.drift)
            if size > room:
                dropped += size
                continue
            room -= size
            self._add_instance(families, key, row)
        waits = dict(self.budget_waits())
        for account, conditions in list(self.accounts.items()):
            size = len(conditions) + (account in waits)
            if size > room:
                dropped += size
                continue
            room -= size
            for type_, status, reason in conditions:
                families.account_condition.add_metric([*account, type_, status, reason], 1)
            if account in waits:
                families.budget_wait.add_metric(list(account), waits[account])
        self.exported = self.max_series - room
        self.dropped += dropped
        yield from families.all()
        yield from self._totals(self.dropped)

    def _add_instance(self, families: _Families, key: Key, row: InstanceRow) -> None:
        where = list(key)
        for (type_, status, reason), at in zip(row.conditions, row.transitions, strict=True):
            families.condition.add_metric([*where, type_, status, reason], 1)
            if at is not None:
                families.transition.add_metric([*where, type_], at)
        families.info.add_metric([*where, row.connector, row.instance_id, row.account], 1)
        if row.valid is not None:
            families.valid.add_metric(where, float(row.valid))
        if row.disabled is not None:
            families.disabled.add_metric(where, float(row.disabled))
        if key in self.drift:
            families.drift.add_metric(where, self.drift[key])

    def _totals(self, dropped: int) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "oco_object_series", "Per-object series exported at the last scrape.", value=self.exported
        )
        yield CounterMetricFamily(
            "oco_object_series_dropped",
            "Per-object series left out of scrapes by the series cap (counted at every scrape).",
            value=dropped,
        )
