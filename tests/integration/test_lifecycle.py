"""Create, update, rotate and resync against the real API server and the simulator.

The operator runs as a process; every assertion reads what a user would see: the object's
status, the token Secret, and the remote instance as the platform (simulator) stores it.
"""

from __future__ import annotations

import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    closeio_spec,
    put_secret,
    remote,
    remotes_for,
    secret_data,
)


def test_create_makes_one_instance_and_a_token_secret(env: Env) -> None:
    env.ready_inputs()
    created = env.instances.create("crm", closeio_spec())
    obj = env.instances.wait_ready("crm")

    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["tokenSecretName"] == "crm-token"
    assert status["instanceName"] == f"{env.namespace}-crm"
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

    [instance] = remotes_for(env.simulator, created["metadata"]["uid"])
    assert instance["id"] == status["instanceID"]
    assert instance["name"] == f"{env.namespace}-crm"
    assert instance["configuration"]["username"] == CLOSEIO_API_KEY
    assert instance["configuration"]["pagination.max"] == "50"
    assert "crm" in instance["tags"]
    assert env.simulator.control.counters()["POST /instances"] == 1

    token = env.core.read_namespaced_secret("crm-token", env.namespace)
    assert secret_data(env.core, env.namespace, "crm-token") == {
        "token": instance["token"],
        "instanceID": str(instance["id"]),
        "apiURL": env.simulator.api_url,
    }
    assert token.metadata.labels["app.kubernetes.io/managed-by"] == "open-connectors-operator"
    [owner] = token.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "ConnectorInstance",
        "crm",
        created["metadata"]["uid"],
        True,
    )
    assert env.instances.get("crm")["metadata"]["finalizers"] == ["openconnectors.io/finalizer"]


def test_spec_update_reaches_the_instance_with_one_put(env: Env) -> None:
    instance_id = env.create_ready()["status"]["instanceID"]
    env.simulator.control.reset_counters()

    spec = closeio_spec(tags=["crm", "sales"], filterResponseNulls=False)
    spec["configuration"][1]["value"] = "75"
    env.instances.patch_spec("crm", spec)
    wait_until(
        lambda: env.instances.get("crm")["status"].get("observedGeneration") == 2, what="generation 2 handled"
    )

    stored = remote(env.simulator, instance_id)
    assert stored["configuration"]["pagination.max"] == "75"
    assert stored["configuration"]["filter.response.nulls"] == "false"
    assert {"crm", "sales"} <= set(stored["tags"])
    counters = env.simulator.control.counters()
    assert counters.get("PUT /instances/{id}") == 1
    assert counters.get("POST /instances", 0) == 0


def test_secret_rotation_reaches_the_instance(env: Env) -> None:
    instance_id = env.create_ready()["status"]["instanceID"]

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": "rotated-key-0b1c2d3e"})
    wait_until(
        lambda: remote(env.simulator, instance_id)["configuration"]["username"] == "rotated-key-0b1c2d3e",
        timeout=10,
        what="the rotated API key on the remote instance",
    )
    assert env.instances.get("crm")["status"]["instanceID"] == instance_id


def test_a_token_changed_by_an_update_reaches_the_secret(env: Env) -> None:
    instance_id = env.create_ready()["status"]["instanceID"]
    env.simulator.control.rotate_on_update(True)

    env.instances.patch_spec("crm", {"tags": ["crm", "rotated"]})
    wait_until(
        lambda: (
            secret_data(env.core, env.namespace, "crm-token")["token"]
            == remote(env.simulator, instance_id)["token"]
            and env.instances.get("crm")["status"].get("observedGeneration") == 2
        ),
        what="the new token in the Secret",
    )


@pytest.mark.manual_operator
def test_idle_operator_writes_nothing_and_resyncs_with_gets_only(env: Env) -> None:
    operator = env.start_operator("--resync-interval", "5")
    obj = env.create_ready()
    token_version = env.core.read_namespaced_secret("crm-token", env.namespace).metadata.resource_version
    env.simulator.control.reset_counters()

    # Two resync windows: each Ready object is checked with one GET, and nothing is written.
    wait_until(
        lambda: env.simulator.control.counters().get("GET /instances/{id}", 0) >= 2,
        timeout=30,
        what="two resyncs",
    )
    counters = env.simulator.control.counters()
    assert set(counters) == {"GET /instances/{id}"}, counters
    assert env.instances.get("crm")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert (
        env.core.read_namespaced_secret("crm-token", env.namespace).metadata.resource_version == token_version
    )
    assert operator is not None


@pytest.mark.manual_operator
def test_token_rotated_on_the_platform_is_picked_up_by_the_resync(env: Env) -> None:
    env.start_operator("--resync-interval", "5")
    instance_id = env.create_ready()["status"]["instanceID"]
    new_token = env.simulator.control.rotate_token(instance_id)
    wait_until(
        lambda: secret_data(env.core, env.namespace, "crm-token")["token"] == new_token,
        timeout=20,
        what="the rotated token",
    )
