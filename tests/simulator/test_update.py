"""PUT/PATCH semantics, token stability and rotation, enable/disable, delete and three-part forms."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import CLOSEIO_API_KEY, MASK, UNAUTHORIZED, assert_error, closeio_body, create


def _three_part(simulator: SimulatorHandle, token: str) -> dict[str, str]:
    return {"Authorization": f"{simulator.authorization}, Element {token}"}


def _get(client: httpx.Client, instance_id: int) -> dict[str, Any]:
    response = client.get(f"/instances/{instance_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_put_replaces_provided_fields_and_keeps_the_rest(simulator_client: httpx.Client) -> None:
    original = create(simulator_client, closeio_body(name="before", tags=["a", "b"]))
    response = simulator_client.put(
        f"/instances/{original['id']}", json={"name": "<i>after</i>", "tags": ["c"]}
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "after"
    assert updated["tags"] == ["c"]
    assert updated["id"] == original["id"]
    assert updated["token"] == original["token"]
    assert updated["configuration"] == original["configuration"]
    assert updated["createdDate"] == original["createdDate"]
    assert updated["updatedDate"] >= original["updatedDate"]
    assert _get(simulator_client, original["id"]) == updated


def test_put_merges_configuration_and_revalidates(simulator_client: httpx.Client) -> None:
    original = create(simulator_client, closeio_body())
    path = f"/instances/{original['id']}"
    full_body = {**closeio_body(), "configuration": {"pagination.max": 25, "event.vendor.type": "polling"}}
    updated = simulator_client.put(path, json=full_body).json()
    config = updated["configuration"]
    assert config["pagination.max"] == "25"
    assert config["event.vendor.type"] == "polling"
    assert config["username"] == CLOSEIO_API_KEY
    assert config["password"] == MASK
    assert updated["tags"] == ["acme-closeio"]

    # Invalid values are refused and nothing at all is changed.
    rejected = simulator_client.put(
        path, json={"name": "new", "configuration": {"event.vendor.type": "carrier-pigeon"}}
    )
    assert_error(rejected, 400, "event.vendor.type")
    assert _get(simulator_client, original["id"]) == updated
    # Unsetting a required key fails the required check again.
    assert_error(simulator_client.put(path, json={"configuration": {"username": None}}), 400, "username")
    # Unsetting an optional key removes it; unsetting a defaulted key restores the default.
    cleared = simulator_client.put(
        path, json={"configuration": {"event.vendor.type": None, "pagination.max": None}}
    )
    assert "event.vendor.type" not in cleared.json()["configuration"]
    assert cleared.json()["configuration"]["pagination.max"] == "100"


def test_patch_is_partial(simulator_client: httpx.Client) -> None:
    original = create(simulator_client, closeio_body(name="n", tags=["keep"]))
    path = f"/instances/{original['id']}"
    renamed = simulator_client.patch(path, json={"name": "renamed"}).json()
    assert renamed["name"] == "renamed"
    assert renamed["tags"] == ["keep"]
    cleared = simulator_client.patch(path, json={"tags": []}).json()
    assert cleared["tags"] == []
    assert cleared["name"] == "renamed"
    unchanged = simulator_client.patch(path, json={}).json()
    assert unchanged["configuration"] == original["configuration"]
    assert_error(simulator_client.patch(path, json={"element": {"key": "jira"}}), 400, "element")
    same_element = simulator_client.patch(path, json={"element": {"key": "closeio"}})
    assert same_element.status_code == 200


def test_token_is_stable_unless_rotation_is_switched_on(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, closeio_body())
    path = f"/instances/{instance['id']}"
    assert simulator_client.put(path, json={"name": "a"}).json()["token"] == instance["token"]
    assert simulator_client.patch(path, json={"name": "b"}).json()["token"] == instance["token"]

    simulator.control.rotate_on_update(True)
    first = simulator_client.put(path, json={"name": "c"}).json()["token"]
    second = simulator_client.patch(path, json={"name": "d"}).json()["token"]
    assert len({instance["token"], first, second}) == 3
    assert _get(simulator_client, instance["id"])["token"] == second
    assert simulator.control.instances()[0]["token"] == second
    # The superseded token no longer authenticates; the new one does.
    assert_error(
        simulator_client.put("/instances/enabled", headers=_three_part(simulator, first)), 401, UNAUTHORIZED
    )
    assert (
        simulator_client.put("/instances/enabled", headers=_three_part(simulator, second)).status_code == 200
    )

    simulator.control.rotate_on_update(False)
    assert simulator_client.patch(path, json={"name": "e"}).json()["token"] == second


def test_rotate_now_and_on_next_update(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    path = f"/instances/{instance['id']}"
    rotated = simulator.control.rotate_token(instance["id"])
    assert rotated != instance["token"]
    assert _get(simulator_client, instance["id"])["token"] == rotated

    simulator.control.rotate_token_on_next_update(instance["id"])
    after_update = simulator_client.patch(path, json={"name": "x"}).json()["token"]
    assert after_update != rotated
    assert simulator_client.patch(path, json={"name": "y"}).json()["token"] == after_update


def test_reauthentication_makes_an_invalid_instance_valid(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, closeio_body())
    path = f"/instances/{instance['id']}"
    simulator.control.mark_invalid(instance["id"])
    assert _get(simulator_client, instance["id"])["valid"] is False
    assert simulator_client.patch(path, json={"name": "still-broken"}).json()["valid"] is False
    repaired = simulator_client.patch(path, json={"configuration": {"username": "new-key"}}).json()
    assert repaired["valid"] is True
    assert repaired["configuration"]["username"] == "new-key"


def test_enable_and_disable(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    enabled_path = f"/instances/{instance['id']}/enabled"
    response = simulator_client.delete(enabled_path)
    assert response.status_code == 200
    assert response.content == b""
    assert _get(simulator_client, instance["id"])["disabled"] is True
    assert simulator_client.put(enabled_path).status_code == 200
    assert _get(simulator_client, instance["id"])["disabled"] is False
    three_part = _three_part(simulator, instance["token"])
    assert simulator_client.delete("/instances/enabled", headers=three_part).status_code == 200
    assert _get(simulator_client, instance["id"])["disabled"] is True
    assert_error(simulator_client.put("/instances/999999999/enabled"), 404)


def test_delete_is_200_with_empty_body_and_then_404(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, closeio_body())
    path = f"/instances/{instance['id']}"
    response = simulator_client.delete(path)
    assert response.status_code == 200
    assert response.content == b""
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method in ("PUT", "PATCH") else {}
        assert_error(simulator_client.request(method, path, **kwargs), 404, str(instance["id"]))
    assert simulator.control.instances() == []
    # Ids are never reused, so a stale id cannot reach a newer instance.
    assert create(simulator_client, closeio_body())["id"] > instance["id"]


def test_three_part_update_and_delete_act_on_the_token_instance(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    target = create(simulator_client, closeio_body(name="target"))
    bystander = create(simulator_client, closeio_body(name="bystander"))
    headers = _three_part(simulator, target["token"])
    assert (
        simulator_client.put("/instances", json={"name": "put"}, headers=headers).json()["id"] == target["id"]
    )
    assert simulator_client.patch("/instances", json={"tags": ["t"]}, headers=headers).json()["tags"] == ["t"]
    assert simulator_client.delete("/instances", headers=headers).status_code == 200
    assert [i["id"] for i in simulator.control.instances()] == [bystander["id"]]
    assert_error(simulator_client.delete("/instances", headers=headers), 401, UNAUTHORIZED)


def test_element_scoped_instance_paths(simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    assert (
        simulator_client.get(f"/elements/closeio/instances/{instance['id']}").json()["id"] == instance["id"]
    )
    assert simulator_client.get(f"/elements/146/instances/{instance['id']}").status_code == 200
    assert_error(simulator_client.get(f"/elements/jira/instances/{instance['id']}"), 404)
    put = simulator_client.put(f"/elements/closeio/instances/{instance['id']}", json={"name": "by-key"})
    assert put.json()["name"] == "by-key"
    assert simulator_client.delete(f"/elements/closeio/instances/{instance['id']}").status_code == 200


def test_configuration_entries(simulator_client: httpx.Client) -> None:
    instance = create(simulator_client, closeio_body())
    base = f"/instances/{instance['id']}/configuration"
    entries = {entry["key"]: entry for entry in simulator_client.get(base).json()}
    assert entries["password"]["propertyValue"] == MASK
    assert entries["password"]["type"] == "PASSWORD"
    assert entries["username"]["required"] is True
    pagination = entries["pagination.max"]
    assert simulator_client.get(f"{base}/{pagination['id']}").json() == pagination
    patched = simulator_client.patch(f"{base}/{pagination['id']}", json={"propertyValue": 40})
    assert patched.json()["propertyValue"] == "40"
    assert _get(simulator_client, instance["id"])["configuration"]["pagination.max"] == "40"
    assert_error(simulator_client.get(f"{base}/1"), 404)
    bad = simulator_client.patch(f"{base}/{entries['username']['id']}", json={"propertyValue": ""})
    assert_error(bad, 400, "username")
