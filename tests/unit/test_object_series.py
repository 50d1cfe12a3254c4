"""Per-object series: what an object's status says, bounded, capped, and gone with the object."""

from __future__ import annotations

import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connector_operator import metrics
from connector_operator.metrics.objects import InstanceRow, ObjectSeries, fair_shares
from connector_operator.reconciler import series
from connector_operator.reconciler.series import LABEL_BOUND, Readiness, instance_row

Sample = tuple[str, tuple[tuple[str, str], ...], float]


def scrape(collector: ObjectSeries) -> list[Sample]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return [
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def named(samples: list[Sample], name: str) -> list[Sample]:
    return [s for s in samples if s[0] == name]


def body(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "team", "name": "crm", "generation": generation,
                     "creationTimestamp": "2026-12-07T10:00:00Z"},
        "spec": {"connectorKey": "closeio"},
        "status": status,
    }  # fmt: skip


def ready(generation: int, status: str = "True", reason: str = "Available") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "observedGeneration": generation}


STALLED = {"type": "Stalled", "status": "True", "reason": "ConfigurationRejected"}
SYNCED = {"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}


def fresh(**kwargs: Any) -> ObjectSeries:
    """A collector whose every scrape exports anew (the process's reuses one for 2 s)."""
    collector = ObjectSeries(**kwargs)
    collector.REUSE = 0.0
    return collector


def test_an_instance_is_its_conditions_identity_and_platform_state() -> None:
    collector = fresh()
    row = instance_row(
        body(
            instanceID=42,
            account="ConnectorAccount/sales",
            valid=False,
            disabled=False,
            conditions=[
                {**ready(1, "False", "InstanceInvalid"), "lastTransitionTime": "2026-12-07T10:00:00Z"},
                STALLED,
            ],
        )
    )
    collector.set_instance(("team", "crm"), row)
    found = scrape(collector)
    where = (("name", "crm"), ("namespace", "team"))
    assert named(found, "oco_connectorinstance_condition") == [
        ("oco_connectorinstance_condition", (*where, ("reason", "InstanceInvalid"), ("status", "False"),
                                             ("type", "Ready")), 1.0),
        ("oco_connectorinstance_condition", (*where, ("reason", "ConfigurationRejected"), ("status", "True"),
                                             ("type", "Stalled")), 1.0),
    ]  # fmt: skip
    # Since when: the Ready condition's lastTransitionTime (Stalled has none here: no series).
    assert named(found, "oco_connectorinstance_condition_last_transition_timestamp_seconds") == [
        ("oco_connectorinstance_condition_last_transition_timestamp_seconds", (*where, ("type", "Ready")),
         datetime.datetime(2026, 12, 7, 10, tzinfo=datetime.UTC).timestamp()),
    ]  # fmt: skip
    assert named(found, "oco_connectorinstance_info") == [
        ("oco_connectorinstance_info", (("account", "ConnectorAccount/sales"), ("connector", "closeio"),
                                        ("instance_id", "42"), *where), 1.0)
    ]  # fmt: skip
    assert named(found, "oco_platform_instance_valid") == [("oco_platform_instance_valid", where, 0.0)]
    assert named(found, "oco_platform_instance_disabled") == [("oco_platform_instance_disabled", where, 0.0)]
    # The drift counter from the first sight, at 0 (so that increase() counts the first repair).
    assert named(found, "oco_connectorinstance_drift_corrections_total") == [
        ("oco_connectorinstance_drift_corrections_total", where, 0.0)
    ]
    assert named(found, "oco_object_series") == [("oco_object_series", (), 7.0)]

    collector.forget_instance(("team", "crm"))
    assert [s for s in scrape(collector) if s[1]] == []  # no labelled series left


def test_a_forged_status_cannot_grow_the_series() -> None:
    """Where the admission policies are off a tenant may write status: unknown types and
    statuses are ignored, repeats count once, a reason or account the operator never writes is
    `Other` (a new one per write would be a new series per write), and label values are cut."""
    huge = "R" * 100_000
    row = instance_row(
        body(
            account=huge,
            instanceID="not-a-number",
            valid="yes",
            conditions=[{**ready(1, reason=huge), "lastTransitionTime": huge}] * 50
            + [{"type": f"T{i}", "status": "True", "reason": "x"} for i in range(50)]
            + [{"type": "Synced", "status": "Maybe", "reason": "x"}, "junk"]
            + [{"type": ["Ready"], "status": {"True": 1}, "reason": ["Available"]}],
        )
    )
    assert row.conditions == (("Ready", "True", "Other"),)
    assert row.account == "Other"
    assert instance_row(body(account="Secret/\x1b[2K")).account == "Other"
    assert len(instance_row({"spec": {"connectorKey": huge}}).connector) == LABEL_BOUND
    assert (row.instance_id, row.valid, row.disabled, row.transitions) == ("", None, None, (None,))
    assert instance_row({"status": ["not", "a", "map"], "spec": "nor this"}).size == 1  # the info only


def synced_object(namespace: str, name: str) -> tuple[tuple[str, str], InstanceRow]:
    """An object of 5 series: Ready, Synced, info, valid, its drift counter."""
    status = {"valid": True, "conditions": [ready(1), SYNCED]}
    return (namespace, name), instance_row(body(**status))


def test_the_cap_keeps_the_first_objects_whole_and_counts_the_rest() -> None:
    collector = fresh(max_series=10)
    for index in range(5):
        collector.set_instance(*synced_object("team", f"crm-{index}"))
    found = scrape(collector)
    assert {dict(s[1])["name"] for s in named(found, "oco_connectorinstance_info")} == {"crm-0", "crm-1"}
    assert named(found, "oco_object_series") == [("oco_object_series", (), 10.0)]
    dropped = "oco_object_series_dropped_total"
    assert named(found, dropped) == [(dropped, (("namespace", "team"),), 15.0)]
    assert named(scrape(collector), dropped)[0][2] == 30.0  # counted at every export


def test_one_namespaces_thousands_of_objects_take_no_other_namespaces_series() -> None:
    collector = fresh(max_series=60)
    for index in range(100):  # first seen: the flood
        collector.set_instance(*synced_object("flood", f"crm-{index:03d}"))
    for index in range(3):
        collector.set_instance(*synced_object("small", f"crm-{index}"))
    found = scrape(collector)
    shown = [dict(s[1]) for s in named(found, "oco_connectorinstance_info")]
    assert sum(1 for labels in shown if labels["namespace"] == "small") == 3  # all of them
    assert sum(1 for labels in shown if labels["namespace"] == "flood") == 9  # the rest: 45 of 60
    dropped = {dict(s[1])["namespace"]: s[2] for s in named(found, "oco_object_series_dropped_total")}
    assert dropped == {"flood": 91 * 5}
    for index in range(100):  # the flood's objects go: so does its counter
        collector.forget_instance(("flood", f"crm-{index:03d}"))
    assert not named(scrape(collector), "oco_object_series_dropped_total")


def test_fair_shares_are_max_min_fair() -> None:
    assert fair_shares({"a": 10, "b": 10}, 100) == {"a": 10, "b": 10}  # everyone fits
    assert fair_shares({"a": 1000, "b": 30, "c": 5}, 100) == {"c": 5, "b": 30, "a": 65}
    assert fair_shares({"a": 1000, "b": 1000}, 100) == {"a": 50, "b": 50}
    assert fair_shares({}, 100) == {}


def test_a_flood_of_scrapes_costs_one_export_per_reuse() -> None:
    collector = ObjectSeries()  # as the process has it: an export is reused for 2 s
    collector.set_instance(*synced_object("team", "crm-0"))
    first = scrape(collector)
    collector.set_instance(*synced_object("team", "crm-1"))
    assert scrape(collector) == first  # within the reuse: the same export, not a new one
    collector.REUSE = 0.0
    assert len(named(scrape(collector), "oco_connectorinstance_info")) == 2


def test_accounts_have_conditions_and_budget_waits_while_they_exist() -> None:
    collector = fresh()
    collector.budget_waits = lambda: [(("ClusterConnectorAccount", "", "shared"), 2.5)]
    account = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "CircuitOpen"}]}}
    metrics_series = metrics.SERIES
    try:
        metrics.SERIES = collector  # observe_account writes to the process's collector
        series.observe_account(("ClusterConnectorAccount", "", "shared"), None, account)
        found = scrape(collector)
        labels = (("kind", "ClusterConnectorAccount"), ("name", "shared"), ("namespace", ""))
        assert named(found, "oco_account_condition") == [
            ("oco_account_condition", (*labels, ("reason", "CircuitOpen"), ("status", "False"),
                                       ("type", "Ready")), 1.0)
        ]  # fmt: skip
        assert named(found, "oco_account_budget_wait_seconds_total") == [
            ("oco_account_budget_wait_seconds_total", labels, 2.5)
        ]
        series.observe_account(("ClusterConnectorAccount", "", "shared"), "DELETED", account)
        assert [s for s in scrape(collector) if s[1]] == []
    finally:
        metrics.SERIES = metrics_series


def test_off_means_no_series_and_no_memory() -> None:
    collector = fresh(enabled=False)
    collector.set_instance(("team", "crm"), instance_row(body(conditions=[ready(1)])))
    collector.drift_corrected(("team", "crm"))
    assert (collector.instances, collector.drift, scrape(collector)) == ({}, {}, [])


def test_drift_corrections_count_per_object_and_go_with_it() -> None:
    collector = fresh()
    collector.drift_corrected(("team", "crm"))  # not (yet) known: nothing to count it against
    collector.set_instance(("team", "crm"), instance_row(body()))
    collector.drift_corrected(("team", "crm"))
    collector.drift_corrected(("team", "crm"))
    assert named(scrape(collector), "oco_connectorinstance_drift_corrections_total")[0][2] == 2.0
    collector.forget_instance(("team", "crm"))
    assert collector.drift == {}


def histogram(cause: str) -> tuple[float, float]:
    """oco_time_to_ready_seconds{cause}: (count, sum) so far in this process."""
    value = metrics.REGISTRY.get_sample_value
    return (
        value("oco_time_to_ready_seconds_count", {"cause": cause}) or 0.0,
        value("oco_time_to_ready_seconds_sum", {"cause": cause}) or 0.0,
    )


def test_time_to_ready_counts_from_creation_then_from_a_spec_change() -> None:
    now = [datetime.datetime(2026, 12, 7, 10, 1, 30, tzinfo=datetime.UTC).timestamp()]  # created + 90 s
    readiness = Readiness(clock=lambda: now[0])
    key = ("team", "crm")
    created, updated = histogram("create"), histogram("update")
    readiness.observe(key, body(1))  # new: no status yet
    readiness.observe(key, body(1, observedGeneration=1, conditions=[ready(1)]))
    assert histogram("create") == (created[0] + 1, created[1] + 90)

    readiness.observe(key, body(2, observedGeneration=1, conditions=[ready(1)]))  # spec changed
    now[0] += 5
    readiness.observe(key, body(3, observedGeneration=1, conditions=[ready(1)]))  # again: the wait goes on
    now[0] += 5
    readiness.observe(key, body(3, observedGeneration=3, conditions=[ready(3)]))
    assert histogram("update") == (updated[0] + 1, updated[1] + 10)
    # Not Ready at a generation already handled (the platform invalidated it): an outage, no wait.
    readiness.observe(key, body(3, observedGeneration=3, conditions=[ready(3, "False", "InstanceInvalid")]))
    assert readiness.pending == {}


def test_an_object_first_seen_ready_counts_nothing() -> None:
    readiness = Readiness()
    readiness.observe(("team", "crm"), body(4, observedGeneration=4, conditions=[ready(4)]))
    assert readiness.pending == {}
