"""bench/chaos.py's checks: whose a remote instance is, by its UID tag or, with a cluster name, by
its claim, which survives a rebuild's new UIDs (issue 18)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bench import chaos

NAMESPACE = "chaos-0"
CLUSTER = "chaos"
OLD_UID, NEW_UID = "11111111-aaaa", "22222222-bbbb"


def item(name: str = "ci-00000", uid: str = NEW_UID, *, deleting: bool = False) -> dict[str, Any]:
    """A ConnectorInstance as the API server lists it: Ready at its generation."""
    meta: dict[str, Any] = {"namespace": NAMESPACE, "name": name, "uid": uid, "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "connectorKey": "closeio",
            "tags": ["chaos", "r0"],
            "configuration": [
                {"key": "username", "valueFrom": {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}}
            ],
        },
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def instance(instance_id: int, *marks: str, token: str = "token-1") -> dict[str, Any]:
    return {
        "id": instance_id,
        "token": token,
        "tags": ["chaos", "r0", *marks],
        "configuration": {"username": "shared-0"},
    }


def uid(value: str) -> str:
    return f"k8s-uid:{value}"


def claim(name: str = "ci-00000", cluster: str = CLUSTER) -> str:
    return f"k8s-claim:{cluster}/{NAMESPACE}/{name}"


def secrets(*tokens: tuple[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """The namespace's Secrets: the shared config and the token Secrets (name, token)."""

    def encoded(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    found = {(NAMESPACE, "closeio-api"): {"data": {"apiKey": encoded("shared-0")}}}
    for name, token in tokens:
        found[(NAMESPACE, f"{name}-token")] = {"data": {"token": encoded(token)}}
    return found


def assess(
    items: list[dict[str, Any]],
    instances: list[dict[str, Any]],
    cluster: str | None = CLUSTER,
    orphaned: set[str] | None = None,
    stranded: set[str] | None = None,
    tokens: tuple[tuple[str, str], ...] = (("ci-00000", "token-1"),),
) -> dict[str, Any]:
    return chaos.assess(
        items,
        secrets(*tokens),
        instances,
        cluster=cluster,
        orphaned=orphaned or set(),
        stranded=stranded or set(),
    )


def counts(result: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in result["counts"].items() if v}


def test_owners_are_the_claim_with_a_cluster_name_else_the_uid_tags() -> None:
    tags = ["crm", uid(NEW_UID), claim()]
    assert chaos.owners(tags, CLUSTER) == [f"{NAMESPACE}/ci-00000"]
    assert chaos.owners(tags, None) == [NEW_UID]
    # Another cluster's claim is not this run's: the UID tag says whose it is.
    assert chaos.owners([uid(OLD_UID), claim(cluster="other")], CLUSTER) == [OLD_UID]
    assert chaos.owners(["crm"], CLUSTER) == []


@pytest.mark.parametrize("cluster", [CLUSTER, None])
def test_an_object_and_its_instance_in_sync_count_nothing(cluster: str | None) -> None:
    marks = (uid(NEW_UID), claim()) if cluster else (uid(NEW_UID),)
    result = assess([item()], [instance(400000, *marks)], cluster=cluster)
    assert counts(result) == {}
    assert result["remote_instances"] == 1
    assert result["untagged_remote_instances"] == 0


def test_a_reclaimed_instance_after_a_rebuild_counts_nothing() -> None:
    """One PUT replaced the old UID tag with the new object's; the claim stayed."""
    assert counts(assess([item(uid=NEW_UID)], [instance(400000, uid(NEW_UID), claim())])) == {}


def test_a_rebuild_that_posted_again_is_a_duplicate_by_claim() -> None:
    old = instance(400000, uid(OLD_UID), claim(), token="token-0")
    new = instance(400001, uid(NEW_UID), claim())
    result = assess([item(uid=NEW_UID)], [old, new])
    assert counts(result) == {"duplicates": 1}
    assert result["examples"]["duplicates"] == [f"{NAMESPACE}/ci-00000"]


def test_judged_by_uid_the_same_rebuild_is_a_leak_not_a_duplicate() -> None:
    """Without a cluster name (or for instances that carry no claim) the old UID names no live
    object: the old instance is leaked."""
    old = instance(400000, uid(OLD_UID), token="token-0")
    new = instance(400001, uid(NEW_UID))
    for cluster in (None, CLUSTER):
        result = assess([item(uid=NEW_UID)], [old, new], cluster=cluster)
        assert counts(result) == {"leaked": 1}
        assert result["examples"]["leaked"] == [f"400000 ({OLD_UID})"]


def test_a_reclaim_that_kept_the_old_uid_tag_is_a_stale_identity() -> None:
    for marks in ((uid(OLD_UID), claim()), (uid(OLD_UID), uid(NEW_UID), claim())):
        assert counts(assess([item(uid=NEW_UID)], [instance(400000, *marks)])) == {"stale_identity": 1}


def test_a_token_secret_without_the_instance_token_is_a_lost_token() -> None:
    remote = [instance(400000, uid(NEW_UID), claim(), token="token-1")]
    assert counts(assess([item()], remote, tokens=(("ci-00000", "token-0"),))) == {"lost_tokens": 1}
    assert counts(assess([item()], remote, tokens=())) == {"lost_tokens": 1}


def test_an_object_without_an_instance_is_missing_and_a_deleting_one_is_stuck() -> None:
    assert counts(assess([item()], [])) == {"missing": 1}
    remote = [instance(400000, uid(NEW_UID), claim())]
    assert counts(assess([item(deleting=True)], remote)) == {"stuck_finalizers": 1}


def test_orphaned_instances_are_not_leaks_by_uid_or_by_claim() -> None:
    by_claim = instance(400000, uid(OLD_UID), claim("ci-00016"))
    by_uid = instance(400001, uid("33333333-cccc"))
    result = assess([], [by_claim, by_uid], orphaned={f"{NAMESPACE}/ci-00016", "33333333-cccc"}, tokens=())
    assert counts(result) == {}


def test_deletions_the_rebuild_cut_short_leave_strays_counted_apart() -> None:
    gone = instance(400000, uid(OLD_UID), claim("ci-00007"))
    result = assess([], [gone], stranded={f"{NAMESPACE}/ci-00007", OLD_UID}, tokens=())
    assert counts(result) == {}
    assert result["strays_left_by_rebuild"] == 1
    # Any other instance of no live object is a leak.
    leaked = instance(400001, uid("44444444-dddd"), claim("ci-00008"))
    assert counts(assess([], [gone, leaked], stranded={f"{NAMESPACE}/ci-00007"}, tokens=())) == {"leaked": 1}


def test_untagged_instances_are_counted_not_judged() -> None:
    result = assess([item()], [instance(400000, uid(NEW_UID), claim()), instance(400001)])
    assert counts(result) == {}
    assert result["untagged_remote_instances"] == 1
    assert result["remote_instances"] == 2


def test_the_rebuild_is_on_by_default_and_needs_a_cluster_name() -> None:
    args = chaos.parse_args([])
    assert (args.rebuild, args.cluster_name) == (True, "chaos")
    assert chaos.parse_args(["--no-rebuild", "--cluster-name="]).rebuild is False
    with pytest.raises(SystemExit):
        chaos.parse_args(["--cluster-name="])


def test_only_an_object_with_the_operators_finalizer_was_taken_on() -> None:
    """A re-applied object deleted before the operator's finalizer was on it never had a pass:
    its old instance stays (a stray), which the driver counts apart instead of as a leak."""
    assert chaos.taken_on({"finalizers": ["openconnectors.io/finalizer"]})
    assert not chaos.taken_on({"finalizers": ["example.com/other"]})
    assert not chaos.taken_on({})
