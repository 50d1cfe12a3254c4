"""Per-object series: what an object's status says, bounded, capped, and gone with the object."""

from __future__ import annotations

import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connector_operator import metrics
from connector_operator.metrics.objects import ObjectSeries
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


STALLED = {"type": "Stalled", "status": "True", "reason": "X"}
SYNCED = {"type": "Synced", "status": "True", "reason": "R"}


def test_an_instance_is_its_conditions_identity_and_platform_state() -> None:
    collector = ObjectSeries()
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
        ("oco_connectorinstance_condition", (*where, ("reason", "X"), ("status", "True"),
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
    assert named(found, "oco_object_series") == [("oco_object_series", (), 6.0)]

    collector.forget_instance(("team", "crm"))
    assert [s for s in scrape(collector) if s[1]] == []  # no labelled series left


def test_a_forged_status_cannot_grow_the_series() -> None:
    """Where the admission policies are off a tenant may write status: unknown types and
    statuses are ignored, repeats count once, and label values are cut."""
    huge = "R" * 100_000
    row = instance_row(
        body(
            account=huge,
            instanceID="not-a-number",
            valid="yes",
            conditions=[{**ready(1, reason=huge), "lastTransitionTime": huge}] * 50
            + [{"type": f"T{i}", "status": "True", "reason": "x"} for i in range(50)]
            + [{"type": "Synced", "status": "Maybe", "reason": "x"}, "junk"],
        )
    )
    assert len(row.conditions) == 1
    assert len(row.conditions[0][2]) == LABEL_BOUND
    assert len(row.account) == LABEL_BOUND
    assert (row.instance_id, row.valid, row.disabled, row.transitions) == ("", None, None, (None,))
    assert instance_row({"status": ["not", "a", "map"], "spec": "nor this"}).size == 1  # the info only


def test_the_cap_keeps_the_first_objects_whole_and_counts_the_rest() -> None:
    collector = ObjectSeries(max_series=10)
    for index in range(5):  # 4 series each: Ready, Synced, info, valid
        status = {
            "valid": True,
            "conditions": [ready(1), {"type": "Synced", "status": "True", "reason": "R"}],
        }
        collector.set_instance(("team", f"crm-{index}"), instance_row(body(**status)))
    found = scrape(collector)
    assert {dict(s[1])["name"] for s in named(found, "oco_connectorinstance_info")} == {"crm-0", "crm-1"}
    assert named(found, "oco_object_series") == [("oco_object_series", (), 8.0)]
    assert named(found, "oco_object_series_dropped_total") == [("oco_object_series_dropped_total", (), 12.0)]
    assert named(scrape(collector), "oco_object_series_dropped_total")[0][2] == 24.0  # counted per scrape


def test_accounts_have_conditions_and_budget_waits_while_they_exist() -> None:
    collector = ObjectSeries()
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
    collector = ObjectSeries(enabled=False)
    collector.set_instance(("team", "crm"), instance_row(body(conditions=[ready(1)])))
    collector.drift_corrected(("team", "crm"))
    assert (collector.instances, collector.drift, scrape(collector)) == ({}, {}, [])


def test_drift_corrections_count_per_object_and_go_with_it() -> None:
    collector = ObjectSeries()
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
