"""Deletion honours deletionPolicy, survives a missing account Secret, and tells how to get out.

There is no garbage collector in the test control plane, so the token Secret's removal is the
operator's own doing here, and is asserted as such.
"""

from __future__ import annotations

import httpx
from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import ACCOUNT, create_ready, remotes_for, secret_data


def test_delete_policy_deletes_the_remote_instance_and_the_token_secret(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    uid = create_ready(instances, core, namespace, simulator)["metadata"]["uid"]
    simulator.control.reset_counters()

    instances.delete("crm")
    instances.wait_gone("crm")
    assert remotes_for(simulator, uid) == []
    assert secret_data(core, namespace, "crm-token") is None
    assert simulator.control.counters().get("DELETE /instances/{id}") == 1


def test_orphan_policy_leaves_the_remote_instance_without_any_api_call(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    uid = create_ready(instances, core, namespace, simulator, deletionPolicy="Orphan")["metadata"]["uid"]
    simulator.control.reset_counters()

    instances.delete("crm")
    instances.wait_gone("crm")
    assert len(remotes_for(simulator, uid)) == 1
    assert simulator.control.counters() == {}


def test_deletion_without_credentials_is_stalled_with_the_release_command(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    uid = create_ready(instances, core, namespace, simulator)["metadata"]["uid"]
    core.delete_namespaced_secret(ACCOUNT, namespace)  # as during a namespace deletion

    instances.delete("crm")
    condition = instances.wait_condition("crm", "Stalled", "True", reason="DeletionBlocked")
    command = (
        f"kubectl patch connectorinstances crm -n {namespace} --type merge "
        """-p '{"spec":{"deletionPolicy":"Orphan"}}'"""
    )
    assert command in condition["message"]
    assert f"Secret '{ACCOUNT}'" in condition["message"]

    instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    instances.wait_gone("crm", timeout=30)
    assert len(remotes_for(simulator, uid)) == 1  # orphaned, as the user chose


def test_a_remote_instance_already_gone_counts_as_deleted(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    instance_id = create_ready(instances, core, namespace, simulator)["status"]["instanceID"]
    httpx.delete(f"{simulator.api_url}/instances/{instance_id}", headers=simulator.headers).raise_for_status()

    instances.delete("crm")
    instances.wait_gone("crm")


def test_outage_and_rate_limit_during_delete_recover_without_leftovers(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    uid = create_ready(instances, core, namespace, simulator)["metadata"]["uid"]
    simulator.control.fail_next("DELETE", 2, status=503)
    simulator.control.rate_limit_next("DELETE", 1, retry_after=1)

    instances.delete("crm")
    instances.wait_gone("crm", timeout=60)
    assert remotes_for(simulator, uid) == []
    assert simulator.control.counters()["DELETE /instances/{id}"] == 4
    wait_until(lambda: secret_data(core, namespace, "crm-token") is None, what="the token Secret removed")
