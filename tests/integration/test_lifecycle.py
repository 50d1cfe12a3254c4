"""Create, update, rotate and resync against the real API server and the simulator.

The operator runs as a process; every assertion reads what a user would see: the object's
status, the token Secret, and the remote instance as the platform (simulator) stores it.
"""

from __future__ import annotations

from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    closeio_spec,
    create_ready,
    put_secret,
    ready_inputs,
    remote,
    remotes_for,
    secret_data,
)


def test_create_makes_one_instance_and_a_token_secret(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    created = instances.create("crm", closeio_spec())
    obj = instances.wait_ready("crm")

    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["tokenSecretName"] == "crm-token"
    assert status["instanceName"] == f"{namespace}-crm"
    assert status["connector"] == {
        "key": "closeio",
        "name": "Close.io",
        "hub": "crm",
        "authenticationType": "basic",
    }
    assert (status["valid"], status["disabled"]) == (True, False)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Ready": ("True", "Available"),
        "Synced": ("True", "ReconcileSuccess"),
        "Reconciling": ("False", "Idle"),
        "Stalled": ("False", "Healthy"),
    }

    [instance] = remotes_for(simulator, created["metadata"]["uid"])
    assert instance["id"] == status["instanceID"]
    assert instance["name"] == f"{namespace}-crm"
    assert instance["configuration"]["username"] == CLOSEIO_API_KEY
    assert instance["configuration"]["pagination.max"] == "50"
    assert "crm" in instance["tags"]
    assert simulator.control.counters()["POST /instances"] == 1

    token = core.read_namespaced_secret("crm-token", namespace)
    assert secret_data(core, namespace, "crm-token") == {
        "token": instance["token"],
        "instanceID": str(instance["id"]),
        "apiURL": simulator.api_url,
    }
    assert token.metadata.labels["app.kubernetes.io/managed-by"] == "open-connectors-operator"
    [owner] = token.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "ConnectorInstance",
        "crm",
        created["metadata"]["uid"],
        True,
    )
    assert instances.get("crm")["metadata"]["finalizers"] == ["openconnectors.io/finalizer"]


def test_spec_update_reaches_the_instance_with_one_put(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    instance_id = create_ready(instances, core, namespace, simulator)["status"]["instanceID"]
    simulator.control.reset_counters()

    spec = closeio_spec(tags=["crm", "sales"], filterResponseNulls=False)
    spec["configuration"][1]["value"] = "75"
    instances.patch_spec("crm", spec)
    wait_until(
        lambda: instances.get("crm")["status"].get("observedGeneration") == 2, what="generation 2 handled"
    )

    stored = remote(simulator, instance_id)
    assert stored["configuration"]["pagination.max"] == "75"
    assert stored["configuration"]["filter.response.nulls"] == "false"
    assert {"crm", "sales"} <= set(stored["tags"])
    counters = simulator.control.counters()
    assert counters.get("PUT /instances/{id}") == 1
    assert counters.get("POST /instances", 0) == 0


def test_secret_rotation_reaches_the_instance(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    instance_id = create_ready(instances, core, namespace, simulator)["status"]["instanceID"]

    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": "rotated-key-0b1c2d3e"})
    wait_until(
        lambda: remote(simulator, instance_id)["configuration"]["username"] == "rotated-key-0b1c2d3e",
        timeout=10,
        what="the rotated API key on the remote instance",
    )
    assert instances.get("crm")["status"]["instanceID"] == instance_id


def test_a_token_changed_by_an_update_reaches_the_secret(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    instance_id = create_ready(instances, core, namespace, simulator)["status"]["instanceID"]
    simulator.control.rotate_on_update(True)

    instances.patch_spec("crm", {"tags": ["crm", "rotated"]})
    wait_until(
        lambda: (
            secret_data(core, namespace, "crm-token")["token"] == remote(simulator, instance_id)["token"]
            and instances.get("crm")["status"].get("observedGeneration") == 2
        ),
        what="the new token in the Secret",
    )


def test_idle_operator_writes_nothing_and_resyncs_with_gets_only(
    start_operator: object,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    operator = start_operator("--resync-interval", "5")  # type: ignore[operator]
    obj = create_ready(instances, core, namespace, simulator)
    token_version = core.read_namespaced_secret("crm-token", namespace).metadata.resource_version
    simulator.control.reset_counters()

    # Two resync windows: each Ready object is checked with one GET, and nothing is written.
    wait_until(
        lambda: simulator.control.counters().get("GET /instances/{id}", 0) >= 2,
        timeout=30,
        what="two resyncs",
    )
    counters = simulator.control.counters()
    assert set(counters) == {"GET /instances/{id}"}, counters
    assert instances.get("crm")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert core.read_namespaced_secret("crm-token", namespace).metadata.resource_version == token_version
    assert operator is not None


def test_token_rotated_on_the_platform_is_picked_up_by_the_resync(
    start_operator: object,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    start_operator("--resync-interval", "5")  # type: ignore[operator]
    instance_id = create_ready(instances, core, namespace, simulator)["status"]["instanceID"]
    new_token = simulator.control.rotate_token(instance_id)
    wait_until(
        lambda: secret_data(core, namespace, "crm-token")["token"] == new_token,
        timeout=20,
        what="the rotated token",
    )
