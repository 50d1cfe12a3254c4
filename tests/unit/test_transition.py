"""`domain.transition`: the one status transition and the merge patch that writes it.

Covers `status_after()`: the stored form of the conditions (and lastTransitionTime kept while a
status holds); observedGeneration advanced for a handled outcome, left behind for a retried one
and never advanced while deleting; what a pass learned (effective settings, an applied request,
the remote instance) recorded in status; an idle pass produces an empty patch; the patch is the
RFC 7386 difference (changed keys only, nested objects patched key by key, null for a removed
key); `parse_status()` ignoring kopf's own fields and treating an unreadable status as empty.
"""

from __future__ import annotations

from connector_operator.api.status import ConnectorFacts, ConnectorInstanceStatus, Reason
from connector_operator.domain.outcome import retrying, stalled, success
from connector_operator.domain.transition import (
    Effective,
    Facts,
    Observed,
    merge_patch,
    parse_status,
    status_after,
    stored,
)

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-01T00:05:00Z"
EFFECTIVE = Effective("http://platform/elements/api-v2", "team-a-crm", "crm-token", "Delete")
OBSERVED = Observed(
    instance_id=42,
    token_digest="digest-1",
    valid=True,
    disabled=False,
    connector=ConnectorFacts(key="closeio", name="Close.io", hub="crm", authentication_type="basic"),
)


def test_conditions_are_written_in_the_stored_form() -> None:
    first = status_after(ConnectorInstanceStatus(), success(), Facts(), 1, T1).status
    written = stored(first)["conditions"]
    assert written[0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "The instance is available and its token is in the Secret",
        "lastTransitionTime": T1,
        "observedGeneration": 1,
    }
    previous = parse_status({"conditions": written})
    again = stored(
        status_after(previous, retrying(Reason.UPDATING, "updating", ready=True), Facts(), 2, T2).status
    )["conditions"]
    assert {c["type"]: c["lastTransitionTime"] for c in again} == {
        "Ready": T1,
        "Synced": T2,
        "Reconciling": T2,
        "Stalled": T1,
    }
    assert {c["observedGeneration"] for c in again} == {2}


def test_a_handled_outcome_observes_the_generation_and_a_retried_one_does_not() -> None:
    assert status_after(ConnectorInstanceStatus(), success(), Facts(), 3, T1).patch["observedGeneration"] == 3
    rejected = stalled(Reason.CONFIGURATION_REJECTED, "rejected")
    assert status_after(ConnectorInstanceStatus(), rejected, Facts(), 3, T1).status.observed_generation == 3
    down = retrying(Reason.API_UNAVAILABLE, "down", ready=False)
    previous = parse_status({"observedGeneration": 2})
    new, patch = status_after(previous, down, Facts(), 3, T1)
    assert new.observed_generation == 2
    assert "observedGeneration" not in patch


def test_while_deleting_only_the_conditions_change() -> None:
    previous = status_after(ConnectorInstanceStatus(), success(), Facts(effective=EFFECTIVE), 1, T1).status
    blocked = stalled(Reason.DELETION_BLOCKED, "restore the Secret")
    new, patch = status_after(previous, blocked, Facts(), 2, T2, deleting=True)
    assert set(patch) == {"conditions"}
    assert new.observed_generation == 1
    assert new.api_url == EFFECTIVE.api_url


def test_what_a_pass_learned_is_recorded() -> None:
    facts = Facts(effective=EFFECTIVE, applied_digest="hmac-sha256:abc", observed=OBSERVED)
    new, patch = status_after(ConnectorInstanceStatus(), success(), facts, 1, T1)
    assert {k: v for k, v in patch.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "apiURL": "http://platform/elements/api-v2",
        "instanceName": "team-a-crm",
        "tokenSecretName": "crm-token",
        "deletionPolicy": "Delete",
        "appliedDigest": "hmac-sha256:abc",
        "lastSyncTime": T1,
        "instanceID": 42,
        "tokenDigest": "digest-1",
        "valid": True,
        "disabled": False,
        "connector": {"key": "closeio", "name": "Close.io", "hub": "crm", "authenticationType": "basic"},
    }
    assert stored(new) == {**patch}


def test_an_idle_pass_writes_nothing() -> None:
    facts = Facts(effective=EFFECTIVE, observed=OBSERVED)
    first = status_after(ConnectorInstanceStatus(), success(), facts, 1, T1).status
    # Read back as the API server serves it, then the same pass again later.
    again = status_after(parse_status(stored(first)), success(), facts, 1, T2)
    assert again.patch == {}
    assert again.status == first


def test_a_changed_connector_is_patched_key_by_key_with_null_for_what_is_gone() -> None:
    facts = Facts(observed=OBSERVED)
    first = status_after(ConnectorInstanceStatus(), success(), facts, 1, T1).status
    renamed = Observed(
        instance_id=42,
        token_digest="digest-2",
        valid=True,
        disabled=False,
        connector=ConnectorFacts(key="closeio", name="Close", hub=None, authentication_type="basic"),
    )
    patch = status_after(first, success(), Facts(observed=renamed), 1, T2).patch
    assert patch == {"tokenDigest": "digest-2", "connector": {"name": "Close", "hub": None}}


def test_merge_patch_is_the_rfc_7386_difference() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "gone": "x"}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "e": [1], "added": True}
    assert merge_patch(old, new) == {"b": {"d": 4}, "e": [1], "added": True, "gone": None}
    assert merge_patch(new, new) == {}


def test_parse_status_ignores_foreign_fields_and_survives_garbage() -> None:
    assert parse_status({"kopf": {"progress": {}}, "instanceID": 7}).instance_id == 7
    assert parse_status({"conditions": "not a list"}) == ConnectorInstanceStatus()
    assert parse_status(None) == ConnectorInstanceStatus()
