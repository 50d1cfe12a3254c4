"""Create, update and rotate against the real API server and the simulator (moved here from
tests/integration: the passes in-process, pass by pass).

Every assertion reads what a user would see: the object's status, the token Secret, and the
remote instance as the platform (simulator) stores it. What the resync does on its own clock (an
idle operator writing nothing, a token rotated on the platform picked up) stays in
tests/integration/test_lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    closeio_spec,
    put_secret,
    ready_inputs,
    remote,
    remotes_for,
    secret_data,
)
from tests.reconciler.kopfstandin import Operator


def generation_handled(generation: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a pass has applied `generation` (the check `Operator.until` takes)."""

    def handled(obj: dict[str, Any]) -> bool:
        return bool(obj.get("status", {}).get("observedGeneration") == generation)

    return handled


async def test_create_makes_one_instance_and_a_token_secret(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    created = op.instances.create("crm", closeio_spec())
    obj = await op.ready("crm", passes=1)

    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["tokenSecretName"] == "crm-token"
    assert status["instanceName"] == f"{op.namespace}-crm"
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

    [instance] = remotes_for(op.simulator, created["metadata"]["uid"])
    assert instance["id"] == status["instanceID"]
    assert instance["name"] == f"{op.namespace}-crm"
    assert instance["configuration"]["username"] == CLOSEIO_API_KEY
    assert instance["configuration"]["pagination.max"] == "50"
    assert "crm" in instance["tags"]
    assert op.simulator.control.counters()["POST /instances"] == 1

    token = op.core.read_namespaced_secret("crm-token", op.namespace)
    assert secret_data(op.core, op.namespace, "crm-token") == {
        "token": instance["token"],
        "instanceID": str(instance["id"]),
        "apiURL": op.simulator.api_url,
    }
    assert token.metadata.labels["app.kubernetes.io/managed-by"] == "open-connectors-operator"
    [owner] = token.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "ConnectorInstance",
        "crm",
        created["metadata"]["uid"],
        True,
    )
    # kopf's finalizer (the stand-in adds it at first sight, as kopf does), and no other.
    assert obj["metadata"]["finalizers"] == ["openconnectors.io/finalizer"]


async def test_spec_update_reaches_the_instance_with_one_put(operator: Operator) -> None:
    op = operator
    instance_id = (await op.create_ready())["status"]["instanceID"]
    op.simulator.control.reset_counters()

    spec = closeio_spec(tags=["crm", "sales"], filterResponseNulls=False)
    spec["configuration"][1]["value"] = "75"
    op.instances.patch_spec("crm", spec)
    await op.until("crm", generation_handled(2), passes=1, what="generation 2 handled")

    stored = remote(op.simulator, instance_id)
    assert stored["configuration"]["pagination.max"] == "75"
    assert stored["configuration"]["filter.response.nulls"] == "false"
    assert {"crm", "sales"} <= set(stored["tags"])
    counters = op.simulator.control.counters()
    assert counters.get("PUT /instances/{id}") == 1
    assert counters.get("POST /instances", 0) == 0


async def test_secret_rotation_reaches_the_instance(operator: Operator) -> None:
    """The next pass after the referenced Secret changed sends the new value (how soon the change
    wakes the object, a watch on that Secret: tests/integration/test_secret_waits.py)."""
    op = operator
    instance_id = (await op.create_ready())["status"]["instanceID"]

    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": "rotated-key-0b1c2d3e"})
    await op.until(
        "crm",
        lambda _: remote(op.simulator, instance_id)["configuration"]["username"] == "rotated-key-0b1c2d3e",
        passes=1,
        what="the rotated API key on the remote instance",
    )
    obj = op.instances.get("crm")
    assert obj is not None
    assert obj["status"]["instanceID"] == instance_id


async def test_a_token_changed_by_an_update_reaches_the_secret(operator: Operator) -> None:
    op = operator
    instance_id = (await op.create_ready())["status"]["instanceID"]
    before = remote(op.simulator, instance_id)["token"]
    op.simulator.control.rotate_on_update(True)

    op.instances.patch_spec("crm", {"tags": ["crm", "rotated"]})

    def rotated(obj: dict[str, Any]) -> bool:
        token = (secret_data(op.core, op.namespace, "crm-token") or {}).get("token")
        return token == remote(op.simulator, instance_id)["token"] and generation_handled(2)(obj)

    await op.until("crm", rotated, passes=1, what="the new token in the Secret")
    assert remote(op.simulator, instance_id)["token"] != before  # the update did rotate it
