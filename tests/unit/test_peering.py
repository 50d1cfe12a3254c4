"""kube/peering.py: who of two copies goes first, and where kopf looks for the peering objects."""

from __future__ import annotations

import datetime
import getpass
import os

import kopf
import pytest

from connector_operator.handlers.setup import peer_in_the_cluster
from connector_operator.kube.keepalive import Peer, outranked
from connector_operator.kube.peering import name_selector, object_path, own_identity, priority_by_age


def test_an_older_copy_ranks_above_a_newer_one() -> None:
    started = 1_790_000_000.0
    older, newer = priority_by_age(started), priority_by_age(started + 0.000_001)
    assert older > newer > 0
    # Kept exactly by any JSON parser (kopf stores it in the peering object's status).
    assert older < 2**53


def test_one_cluster_scoped_peering_object_selected_by_name() -> None:
    assert object_path("oco") == "/apis/kopf.dev/v1/clusterkopfpeerings/oco"
    assert name_selector("oco") == "metadata.name=oco"


def test_kopf_peers_in_the_cluster_object_whatever_it_watches() -> None:
    """A namespaced operator (kopf.operator(namespaces=...) sets clusterwide=False before the startup
    handlers) still peers in the ClusterKopfPeering, and lists and watches only that one."""
    settings = kopf.OperatorSettings()
    settings.peering.clusterwide = False
    peer_in_the_cluster(settings, "oco")
    assert settings.peering.clusterwide
    cluster = kopf.Resource("kopf.dev", "v1", "clusterkopfpeerings", namespaced=False)
    namespaced = kopf.Resource("kopf.dev", "v1", "kopfpeerings", namespaced=True)
    assert settings.watching.field_selectors.collect(cluster) == ["metadata.name=oco"]
    assert settings.watching.field_selectors.collect(namespaced) == []


def test_the_pod_names_the_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", "oco-5d8f-x2")
    assert own_identity() == "oco-5d8f-x2"


def test_without_a_passwd_entry_the_uid_names_the_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod's uid has no passwd entry (the kubelet adds none): kopf's own getpass lookup would raise."""
    monkeypatch.delenv("POD_ID", raising=False)

    def no_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    monkeypatch.setattr(getpass, "getuser", no_entry)
    assert own_identity().startswith(f"{os.getuid()}@")


NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
ME = Peer("me", 100)


def peering(**records: object) -> dict[str, object]:
    return {"status": records}


def alive(priority: int, seconds_ago: float = 5, lifetime: int = 60) -> dict[str, object]:
    seen = NOW - datetime.timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


def test_an_alive_copy_of_higher_or_equal_priority_outranks_this_one() -> None:
    # kopf's rule: a higher priority pauses this copy, an equal one pauses both.
    assert outranked(ME, peering(me=alive(100), other=alive(101)), NOW)
    assert outranked(ME, peering(other=alive(100)), NOW)


def test_lower_expired_own_and_unreadable_records_do_not() -> None:
    assert not outranked(ME, peering(me=alive(100), other=alive(99)), NOW)
    assert not outranked(ME, peering(other=alive(200, seconds_ago=61)), NOW)
    assert not outranked(ME, peering(me=alive(500)), NOW)  # its own record, whatever it says
    assert not outranked(ME, peering(other={"priority": "high"}, third="x"), NOW)
    assert not outranked(ME, {"status": None}, NOW)
