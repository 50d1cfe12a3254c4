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
    oco_object_series                                 per-object series in the last export
    oco_object_series_dropped_total{namespace}        per-object series left out by the cap

The cap bounds one export. Each namespace gets a fair share of it (all it needs if everyone fits;
else max-min fair, the series of cluster-scoped accounts counting under namespace ""), and
within its share its objects are exported whole, in the order the operator first saw them; the
rest are counted as dropped, by namespace (at every export, so a cap that is hit shows as a
rate). So one tenant's thousands of objects cannot take another team's series, and their
alerts, away.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
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
    """The rows of every object, and their export within the series cap.

    The rows are written by the event loop and read by the metrics server's threads: a scrape
    copies them first, under `_writing`, which every write takes too (a copy is not one step
    under the GIL: a collection in between may run other threads, and a scrape failed with
    "dictionary changed size during iteration" while 1,000 objects were created). An export is
    reused for `REUSE` seconds, so that a flood of scrapes (anything that reaches the port) costs
    one export per `REUSE`, not one each."""

    REUSE = 2.0

    def __init__(self, enabled: bool = True, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self.enabled, self.max_series = enabled, max_series
        self.instances: dict[Key, InstanceRow] = {}
        self.accounts: dict[AccountId, tuple[Condition, ...]] = {}
        self.drift: dict[Key, int] = {}
        self.budget_waits: BudgetWaits = tuple
        self.exported = 0
        self.dropped: dict[str, int] = {}  # by namespace, while it has objects
        self._lock = threading.Lock()  # one export at a time
        self._writing = threading.Lock()  # the rows, between the loop's writes and a scrape's copy
        self._last: tuple[float, list[Metric]] | None = None

    def configure(self, enabled: bool, max_series: int) -> None:
        self.enabled, self.max_series = enabled, max_series
        if not enabled:
            self.clear()

    def clear(self) -> None:
        """No object's series: a copy of the operator outranked by another (peering) sees no
        events, and what it last saw would go stale; kopf lists every object again on resuming."""
        with self._writing:
            self.instances.clear()
            self.accounts.clear()
            self.drift.clear()
        self._last = None

    def set_instance(self, key: Key, row: InstanceRow) -> None:
        if self.enabled:
            with self._writing:
                self.instances[key] = row

    def forget_instance(self, key: Key) -> None:
        with self._writing:
            self.instances.pop(key, None)
            self.drift.pop(key, None)

    def drift_corrected(self, key: Key) -> None:
        if self.enabled and key in self.instances:
            with self._writing:
                self.drift[key] = self.drift.get(key, 0) + 1

    def set_account(self, account: AccountId, conditions: tuple[Condition, ...]) -> None:
        if self.enabled:
            with self._writing:
                self.accounts[account] = conditions

    def forget_account(self, account: AccountId) -> None:
        with self._writing:
            self.accounts.pop(account, None)

    def describe(self) -> Iterator[Metric]:
        """The families without samples: what a registry (or a dashboard's linter) may expect."""
        yield from _Families().all()
        yield from _totals(0, {})

    def collect(self) -> Iterator[Metric]:
        if not self.enabled:
            return iter(())
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.REUSE:
                self._last = (now, self._export())
            return iter(self._last[1])

    def _export(self) -> list[Metric]:
        by_namespace = self._rows()
        needs = {namespace: sum(size for size, _ in rows) for namespace, rows in by_namespace.items()}
        shares = fair_shares(needs, self.max_series)
        families, exported = _Families(), 0
        for namespace, rows in by_namespace.items():
            room = shares[namespace]
            for size, add in rows:
                if size > room:
                    self.dropped[namespace] = self.dropped.get(namespace, 0) + size
                    continue
                room, exported = room - size, exported + size
                add(families)
        self.dropped = {ns: n for ns, n in self.dropped.items() if ns in by_namespace}
        self.exported = exported
        return [*families.all(), *_totals(exported, self.dropped)]

    def _rows(self) -> dict[str, list[tuple[int, Callable[[_Families], None]]]]:
        """Each namespace's objects: their series count and how to add them, in order of sight."""
        with self._writing:
            instances, accounts, drift = dict(self.instances), dict(self.accounts), dict(self.drift)
        waits = _retried(lambda: dict(self.budget_waits()))
        rows: dict[str, list[tuple[int, Callable[[_Families], None]]]] = {}
        for key, row in instances.items():
            add = functools.partial(_add_instance, key=key, row=row, drift=drift.get(key, 0))
            rows.setdefault(key[0], []).append((row.size + 1, add))  # + its drift counter
        for account, conditions in accounts.items():
            waited = waits.get(account)
            add = functools.partial(_add_account, account=account, conditions=conditions, waited=waited)
            rows.setdefault(account[1], []).append((len(conditions) + (waited is not None), add))
        return rows


def _retried(copy: Callable[[], dict[AccountId, float]]) -> dict[AccountId, float]:
    """A copy of what the loop writes without our lock (the account gates): a write during the
    copy fails it with RuntimeError, and another try almost always succeeds; else none."""
    for _ in range(5):
        try:
            return copy()
        except RuntimeError:
            continue
    return {}


def fair_shares(needs: dict[str, int], room: int) -> dict[str, int]:
    """Each namespace's share of `room` series: what it needs if all fit, else max-min fair (equal
    shares, and what a namespace needs less than its share goes to the others). One namespace
    with thousands of objects then cannot take another's series away."""
    shares: dict[str, int] = {}
    left, count = room, len(needs)
    for namespace, need in sorted(needs.items(), key=lambda item: item[1]):
        shares[namespace] = min(need, left // count)
        left, count = left - shares[namespace], count - 1
    return shares


def _add_instance(families: _Families, key: Key, row: InstanceRow, drift: int) -> None:
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
    families.drift.add_metric(where, drift)


def _add_account(
    families: _Families, account: AccountId, conditions: tuple[Condition, ...], waited: float | None
) -> None:
    for type_, status, reason in conditions:
        families.account_condition.add_metric([*account, type_, status, reason], 1)
    if waited is not None:
        families.budget_wait.add_metric(list(account), waited)


def _totals(exported: int, dropped: dict[str, int]) -> Iterator[Metric]:
    yield GaugeMetricFamily("oco_object_series", "Per-object series in the last export.", value=exported)
    family = CounterMetricFamily(
        "oco_object_series_dropped",
        "Per-object series left out by the series cap, by namespace (counted at every export).",
        labels=["namespace"],
    )
    for namespace, count in sorted(dropped.items()):
        family.add_metric([namespace], count)
    yield family
