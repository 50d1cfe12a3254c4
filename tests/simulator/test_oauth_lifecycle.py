"""OAuth connectors, second half: refreshes the provider refuses, re-authentication in place, and
the three-part `Element` authorization on instance-scoped endpoints (choices in oauth.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import (
    MASK,
    SwaggerValidator,
    assert_error,
    create,
    oauth_body,
    oauth_code,
)


def _revoked(simulator: SimulatorHandle, client: httpx.Client) -> dict[str, Any]:
    instance = create(client, oauth_body(client))
    simulator.control.revoke_refresh_token(instance["id"])
    return instance


def test_a_revoked_refresh_token_makes_the_next_read_invalid_and_the_fifth_disables(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, oauth_body(simulator_client))
    path = f"/instances/{instance['id']}"
    healthy = simulator_client.get(path).json()
    assert (healthy["valid"], healthy["disabled"]) == (True, False)
    simulator.control.revoke_refresh_token(instance["id"])
    # Lists do not refresh; a read of the instance does, and each failed refresh counts.
    assert simulator_client.get("/instances").json()[0]["valid"] is True
    seen = [simulator_client.get(path).json() for _ in range(4)]
    assert [(body["valid"], body["disabled"]) for body in seen] == [(False, False)] * 4
    fifth = simulator_client.get(f"/elements/sfdc/instances/{instance['id']}").json()
    assert (fifth["valid"], fifth["disabled"]) == (False, True)
    assert simulator.control.instance(instance["id"])["failedRefreshes"] == 5
    # Disabled: the platform stops refreshing it.
    simulator_client.get(path)
    assert simulator.control.instance(instance["id"])["failedRefreshes"] == 5


def test_the_control_api_can_force_a_refresh(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, oauth_body(simulator_client))
    access_before = simulator.control.instance(instance["id"])["configuration"]["oauth.user.token"]
    refreshed = simulator.control.refresh_instance(instance["id"])
    assert refreshed["valid"] is True
    assert refreshed["configuration"]["oauth.user.token"] != access_before  # a new access token
    simulator.control.revoke_refresh_token(instance["id"])
    assert simulator.control.refresh_instance(instance["id"])["valid"] is False
    with pytest.raises(httpx.HTTPStatusError) as raised:
        simulator.control.revoke_refresh_token(create_closeio(simulator_client)["id"])
    assert raised.value.response.status_code == 400


def create_closeio(client: httpx.Client) -> dict[str, Any]:
    body = {"element": {"key": "closeio"}, "name": "c", "configuration": {"username": "k"}}
    return create(client, body)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_reauthentication_with_a_new_code_repairs_the_same_instance(
    simulator: SimulatorHandle, simulator_client: httpx.Client, method: str
) -> None:
    instance = _revoked(simulator, simulator_client)
    path = f"/instances/{instance['id']}"
    assert simulator_client.get(path).json()["valid"] is False
    simulator.control.reset_counters()
    body = {"providerData": {"code": oauth_code(simulator_client)}}
    response = simulator_client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    repaired = response.json()
    assert (repaired["id"], repaired["token"], repaired["valid"]) == (instance["id"], instance["token"], True)
    assert "providerData" not in repaired
    assert repaired["configuration"]["oauth.user.refresh_token"] == MASK
    assert simulator_client.get(path).json()["valid"] is True  # the new refresh token works
    raw = simulator.control.instance(instance["id"])
    assert raw["failedRefreshes"] == 0
    counters = simulator.control.counters()
    assert counters.get("POST /instances", 0) == 0
    assert counters[f"{method} /instances/{{id}}"] == 1


def test_reauthentication_keeps_the_token_unless_rotation_is_injected(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = _revoked(simulator, simulator_client)
    simulator.control.rotate_on_update(True)
    path = f"/instances/{instance['id']}"
    patched = simulator_client.patch(path, json={"providerData": {"code": oauth_code(simulator_client)}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["token"] != instance["token"]
    assert patched.json()["valid"] is True


def test_reauthentication_does_not_re_enable_and_a_bad_code_changes_nothing(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = _revoked(simulator, simulator_client)
    path = f"/instances/{instance['id']}"
    for _ in range(5):
        simulator_client.get(path)
    used = oauth_code(simulator_client)
    create(simulator_client, {**oauth_body(simulator_client, name="other"), "providerData": {"code": used}})
    refused = simulator_client.patch(path, json={"name": "renamed", "providerData": {"code": used}})
    assert_error(refused, 400, "Unable to exchange the OAuth code")
    after = simulator_client.get(path).json()
    assert (after["name"], after["valid"], after["disabled"]) == ("sales", False, True)
    # A configuration-only update carries no grant: still invalid.
    simulator_client.patch(path, json={"configuration": {"filter.response.nulls": False}})
    assert simulator.control.instance(instance["id"])["valid"] is False

    repaired = simulator_client.put(
        path, json={"providerData": {"code": oauth_code(simulator_client)}}
    ).json()
    assert (repaired["valid"], repaired["disabled"]) == (True, True)  # re-enabling is a separate call
    assert simulator_client.put(f"{path}/enabled").status_code == 200
    assert simulator_client.get(path).json()["disabled"] is False


def test_a_new_refresh_token_in_the_configuration_reauthenticates_too(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = _revoked(simulator, simulator_client)
    path = f"/instances/{instance['id']}"
    simulator_client.get(path)
    body = {"configuration": {"oauth.user.refresh_token": "from-elsewhere"}}
    patched = simulator_client.patch(path, json=body)
    assert patched.status_code == 200, patched.text
    assert patched.json()["valid"] is True
    assert simulator.control.instance(instance["id"])["configuration"]["oauth.user.refresh_token"] != (
        "from-elsewhere"
    )
    # Echoing the masked value back is not a new grant.
    echoed = simulator_client.put(path, json=patched.json())
    assert echoed.status_code == 200, echoed.text


def test_element_token_authorization_on_instance_scoped_endpoints(
    simulator: SimulatorHandle, simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    instance = create(simulator_client, oauth_body(simulator_client))
    # The order the element-level Swagger files use: Element first.
    account = f"User {simulator.user_secret}, Organization {simulator.organization_secret}"
    header = f"Element {instance['token']}, {account}"
    with httpx.Client(base_url=simulator.api_url, headers={"Authorization": header}) as workload:
        listed = workload.get("/instances/configuration")
        assert listed.status_code == 200, listed.text
        swagger_validator.check("/instances/configuration", "GET", listed.json())
        entries = {entry["key"]: entry for entry in listed.json()}
        for secret in ("oauth.api.key", "oauth.api.secret", "oauth.user.refresh_token"):
            assert entries[secret]["propertyValue"] == MASK
        nulls = entries["filter.response.nulls"]
        patched = workload.patch(f"/instances/configuration/{nulls['id']}", json={"propertyValue": "false"})
        assert patched.status_code == 200, patched.text
        assert workload.get(f"/instances/configuration/{nulls['id']}").json()["propertyValue"] == "false"
        # A GET with the token reads the instance: after a revoke, it is the failed refresh.
        simulator.control.revoke_refresh_token(instance["id"])
        assert workload.get("/instances/configuration").status_code == 200
    assert simulator.control.instance(instance["id"])["valid"] is False
    wrong = f"Element not-a-token, {account}"
    assert_error(simulator_client.get("/instances/configuration", headers={"Authorization": wrong}), 401)
