"""kube/peering.py: who of two copies goes first, and where kopf looks for the peering objects."""

from __future__ import annotations

import getpass
import os

import pytest

from connector_operator.kube.peering import collection_path, own_identity, priority_by_age


def test_an_older_copy_ranks_above_a_newer_one() -> None:
    started = 1_790_000_000.0
    older, newer = priority_by_age(started), priority_by_age(started + 0.000_001)
    assert older > newer > 0
    # Kept exactly by any JSON parser (kopf stores it in the peering object's status).
    assert older < 2**53


def test_peering_objects_per_namespace_or_for_the_cluster() -> None:
    assert collection_path("sales") == "/apis/kopf.dev/v1/namespaces/sales/kopfpeerings"
    assert collection_path(None) == "/apis/kopf.dev/v1/clusterkopfpeerings"


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
