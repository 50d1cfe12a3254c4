"""`why`'s report (unit): the conditions in a fixed order with their messages, the latest Events
oldest first and bounded, plannedAction, the next retry only where the operator reports one (a
deletion's, in kopf's progress record), and for a blocked deletion the one releasing command,
unless the spec already releases it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubectl_openconnectors import render, why

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


def obj(*conditions: tuple[str, str, str], **fields: Any) -> dict[str, Any]:
    meta = {"name": "crm", "namespace": "sales", "uid": "u-1", **fields.pop("metadata", {})}
    status = {
        "conditions": [
            {
                "type": t,
                "status": s,
                "reason": r,
                "message": f"{t} says {r}",
                "lastTransitionTime": "2026-01-02T11:59:00Z",
            }
            for t, s, r in conditions
        ],
        **fields.pop("status", {}),
    }
    return {"metadata": meta, "spec": {"connectorKey": "closeio", **fields.pop("spec", {})}, "status": status}


def event(minute: int, reason: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "Normal",
        "reason": reason,
        "message": f"at {minute}",
        "lastTimestamp": f"2026-01-02T11:{minute:02d}:00Z",
        **more,
    }


def test_conditions_in_order_with_messages_and_the_latest_events_bounded() -> None:
    stalled = obj(
        ("Stalled", "True", "AdoptionConflict"),
        ("Ready", "False", "AdoptionConflict"),
        ("Synced", "False", "AdoptionConflict"),
    )
    events = [event(m, f"E{m}") for m in (5, 1, 9, 3, 7)]
    events.append(
        {
            "type": "Warning",
            "reason": "Series",
            "note": "new-style",
            "series": {"lastObservedTime": "2026-01-02T11:08:00Z", "count": 4},
        }
    )
    data = why.report(stalled, events, limit=3)
    assert [c["type"] for c in data["conditions"]] == ["Ready", "Synced", "Stalled"]
    assert data["conditions"][2]["message"] == "Stalled says AdoptionConflict"
    assert [(e["reason"], e["count"]) for e in data["events"]] == [("E7", 1), ("Series", 4), ("E9", 1)]
    assert data["events"][1]["message"] == "new-style"
    assert (data["ready"], data["reason"]) == ("False", "AdoptionConflict")
    assert why.healthy(data) is False


def test_planned_action_account_and_the_machine_readable_keys() -> None:
    observed = obj(
        ("Ready", "True", "Available"),
        spec={
            "managementPolicy": "ObserveOnly",
            "instanceID": 4,
            "accountRef": {"kind": "ClusterConnectorAccount", "name": "shared"},
        },
        status={"plannedAction": "Update: instanceName, tags", "instanceID": 4},
    )
    data = why.report(observed, [], limit=10)
    assert list(data) == [
        "kind", "namespace", "name", "uid", "ready", "reason", "account", "instanceID", "managementPolicy",
        "paused", "plannedAction", "conditions", "events", "nextRetry", "deletion",
    ]  # fmt: skip
    assert (data["plannedAction"], data["account"], data["instanceID"]) == (
        "Update: instanceName, tags",
        "ClusterConnectorAccount/shared",
        4,
    )
    assert why.healthy(data)
    text = why.render_report(data, render.Palette(enabled=False), NOW)
    assert "Planned action: Update: instanceName, tags" in text
    assert "Events: none" in text


def test_a_live_objects_retry_time_is_status_next_attempt_at_and_never_invented() -> None:
    retrying = obj(("Ready", "False", "APIUnavailable"), ("Reconciling", "True", "APIUnavailable"))
    assert why.report(retrying, [], 10)["nextRetry"] == {"at": None, "note": why.NO_RETRY_TIME}
    retrying["status"]["nextAttemptAt"] = "2026-01-02T12:02:00Z"
    later = why.report(retrying, [], 10)["nextRetry"]
    assert later["at"] == "2026-01-02T12:02:00Z"
    assert "Next retry:     in 2m" in why.render_report(
        why.report(retrying, [], 10), render.Palette(enabled=False), NOW
    )
    fine = obj(("Ready", "True", "Available"), ("Reconciling", "False", "ReconcileSuccess"))
    assert why.report(fine, [], 10)["nextRetry"] == {"at": None, "note": ""}


def test_a_blocked_deletion_its_next_attempt_and_the_command_that_releases_it() -> None:
    blocked = obj(
        ("Ready", "False", "DeletionBlocked"),
        ("Stalled", "True", "DeletionBlocked"),
        metadata={"deletionTimestamp": "2026-01-02T11:50:00Z", "finalizers": ["openconnectors.io/finalizer"]},
        status={"kopf": {"progress": {"delete_instance": {"delayed": "2026-01-02T12:00:42.5"}}}},
    )
    data = why.report(blocked, [], 10)
    orphan = """'{"spec":{"deletionPolicy":"Orphan"}}'"""
    command = f"kubectl patch connectorinstances crm -n sales --type merge -p {orphan}"
    assert data["deletion"] == {"deleting": True, "blocked": True, "releaseCommand": command, "note": ""}
    assert data["nextRetry"] == {"at": "2026-01-02T12:00:42.5", "note": "the deletion's next attempt"}
    text = why.render_report(data, render.Palette(enabled=False), NOW)
    assert (
        f"Deletion blocked. To release the object and leave the remote instance on the platform:\n  {command}"
        in text
    )
    assert "Next retry:     in 42s (2026-01-02T12:00:42.5): the deletion's next attempt" in text


def test_a_held_deletion_counts_as_blocked_and_one_already_orphaned_gets_no_command() -> None:
    held = obj(
        ("Ready", "True", "Available"),
        metadata={"deletionTimestamp": "2026-01-02T11:50:00Z", "finalizers": ["openconnectors.io/finalizer"]},
    )
    assert why.report(held, [], 10)["deletion"]["releaseCommand"] is not None
    orphaned = obj(
        ("Ready", "True", "Available"),
        metadata={"deletionTimestamp": "2026-01-02T11:50:00Z", "finalizers": ["openconnectors.io/finalizer"]},
        spec={"deletionPolicy": "Orphan"},
    )
    deletion = why.report(orphaned, [], 10)["deletion"]
    assert deletion["releaseCommand"] is None
    assert "already released by its spec" in deletion["note"]
    # A reason alone, without a deletion under way (the condition is left from one that was undone):
    assert why.report(obj(("Stalled", "True", "DeletionBlocked")), [], 10)["deletion"]["blocked"] is True
    assert why.report(obj(("Ready", "True", "Available")), [], 10)["deletion"]["blocked"] is False
