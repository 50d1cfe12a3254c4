"""Outages, rate limits, lost answers and a killed operator never duplicate or orphan anything.

The crash test is the one that matters most: the operator is SIGKILLed after the platform has
created the instance but before the operator learned its ID. The restarted operator must find
that instance by its identity tag and adopt it, not create a second one.
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import closeio_spec, create_ready, ready_inputs, remotes_for, secret_data


def test_outage_during_create_recovers_with_one_instance(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    simulator.control.fail_next("POST", 2, status=503)
    uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
    condition = instances.wait_condition("crm", "Reconciling", "True", reason="APIUnavailable")
    assert "503" in condition["message"]
    instances.wait_ready("crm", timeout=30)
    assert len(remotes_for(simulator, uid)) == 1
    assert simulator.control.counters()["POST /instances"] == 3


def test_rate_limit_during_create_honours_retry_after(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    simulator.control.rate_limit_next("POST", 1, retry_after=2)
    uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
    condition = instances.wait_condition("crm", "Reconciling", "True", reason="RateLimited")
    assert "retrying after 2s" in condition["message"]
    instances.wait_ready("crm", timeout=30)
    assert len(remotes_for(simulator, uid)) == 1


def test_a_lost_answer_to_the_post_does_not_duplicate_the_instance(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    simulator.control.drop_next("POST", 1, after_handling=True)
    uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
    obj = instances.wait_ready("crm", timeout=30)
    [instance] = remotes_for(simulator, uid)
    assert obj["status"]["instanceID"] == instance["id"]
    assert simulator.control.counters()["POST /instances"] == 1


def test_operator_killed_between_post_and_status_write_adopts_its_instance(
    start_operator: Callable[..., OperatorProcess],
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    operator = start_operator()
    simulator.control.hang_next("POST", 1)  # the platform creates the instance, the answer never comes
    uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
    wait_until(lambda: remotes_for(simulator, uid), what="the platform to have created the instance")
    operator.kill()
    assert "instanceID" not in (instances.get("crm").get("status") or {})

    start_operator()
    obj = instances.wait_ready("crm", timeout=30)
    [instance] = remotes_for(simulator, uid)
    assert obj["status"]["instanceID"] == instance["id"]
    assert secret_data(core, namespace, "crm-token")["token"] == instance["token"]
    assert simulator.control.counters()["POST /instances"] == 1


def test_restart_of_a_settled_operator_makes_no_writes(
    start_operator: Callable[..., OperatorProcess],
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    operator = start_operator()
    instances.create("crm", closeio_spec())
    version = instances.wait_ready("crm")["metadata"]["resourceVersion"]
    operator.stop()
    simulator.control.reset_counters()

    start_operator()
    # A change the restarted operator must notice proves it has settled; it must not have written before.
    core.patch_namespaced_secret("crm-token", namespace, {"data": {"token": "dGFtcGVyZWQ="}})
    wait_until(
        lambda: secret_data(core, namespace, "crm-token")["token"] != "tampered", what="the Secret restored"
    )
    counters = simulator.control.counters()
    assert counters.get("POST /instances", 0) == 0
    assert counters.get("PUT /instances/{id}", 0) == 0
    assert instances.get("crm")["metadata"]["resourceVersion"] == version


def test_token_secret_edited_or_deleted_by_hand_is_restored(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    create_ready(instances, core, namespace, simulator)
    original = secret_data(core, namespace, "crm-token")

    core.patch_namespaced_secret("crm-token", namespace, {"data": {"token": "dGFtcGVyZWQ=", "mine": "eA=="}})
    wait_until(
        lambda: secret_data(core, namespace, "crm-token")["token"] == original["token"], what="restore"
    )
    assert secret_data(core, namespace, "crm-token")["mine"] == "x"  # keys we did not write are kept

    core.delete_namespaced_secret("crm-token", namespace)
    wait_until(
        lambda: (secret_data(core, namespace, "crm-token") or {}).get("token") == original["token"],
        what="recreate",
    )
