"""Cases from the vendor's own instance API tests (doc section 14) that the simulator once failed.

Each 200 body of an operation the vendor Swagger describes is validated against it.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_PASSWORD,
    MASK,
    SwaggerValidator,
    closeio_body,
    create,
    oauth_code,
)

ENTRIES = "/instances/{id}/configuration"
ENTRY = "/instances/{id}/configuration/{configId}"


def _entries(
    client: httpx.Client, instance_id: int, validator: SwaggerValidator
) -> dict[str, dict[str, Any]]:
    response = client.get(f"/instances/{instance_id}/configuration")
    assert response.status_code == 200, response.text
    validator.check(ENTRIES, "GET", response.json())
    return {entry["key"]: entry for entry in response.json()}


def _patch_entry(
    client: httpx.Client, instance_id: int, config_id: int, value: str, validator: SwaggerValidator
) -> dict[str, Any]:
    response = client.patch(
        f"/instances/{instance_id}/configuration/{config_id}", json={"propertyValue": value}
    )
    assert response.status_code == 200, response.text
    validator.check(ENTRY, "PATCH", response.json())
    body: dict[str, Any] = response.json()
    return body


# -- every configuration key, with the platform's defaults -------------------------------------


def test_configuration_lists_every_element_key_with_the_platform_defaults(
    simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    instance = create(simulator_client, closeio_body())
    element = simulator_client.get("/elements/closeio").json()
    entries = _entries(simulator_client, instance["id"], swagger_validator)
    assert list(entries) == [definition["key"] for definition in element["configuration"]]
    assert entries["event.notification.enabled"]["propertyValue"] == "false"
    assert entries["filter.response.nulls"]["propertyValue"] == "true"
    assert entries["username"]["propertyValue"] == CLOSEIO_API_KEY
    assert entries["password"]["propertyValue"] == MASK
    assert entries["event.notification.callback.url"]["propertyValue"] == ""  # unset, no default
    # The element definition names the same defaults.
    defaults = {d["key"]: d["defaultValue"] for d in element["configuration"]}
    assert defaults["event.notification.enabled"] == "false"
    assert defaults["filter.response.nulls"] == "true"


def test_an_element_default_wins_over_the_platform_default(
    simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    body = {
        "element": {"key": "freshservice"},
        "name": "fs",
        "configuration": {"username": "u", "password": "p", "subdomain": "acme"},
    }
    instance = create(simulator_client, body)
    entries = _entries(simulator_client, instance["id"], swagger_validator)
    assert entries["event.notification.enabled"]["propertyValue"] == "false"
    assert entries["event.vendor.type"]["propertyValue"] == "polling"
    assert entries["filter.response.nulls"]["propertyValue"] == "true"


def test_patching_one_entry_and_reading_it_back(
    simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    instance = create(simulator_client, closeio_body())
    instance_id = instance["id"]
    entries = _entries(simulator_client, instance_id, swagger_validator)
    changes = {
        "event.notification.enabled": "true",
        "filter.response.nulls": "false",
        "event.notification.callback.url": "https://example.com/events",
    }
    for key, value in changes.items():
        config_id = entries[key]["id"]
        assert (
            _patch_entry(simulator_client, instance_id, config_id, value, swagger_validator)["propertyValue"]
            == value
        )
        single = simulator_client.get(f"/instances/{instance_id}/configuration/{config_id}")
        assert single.status_code == 200
        swagger_validator.check(ENTRY, "GET", single.json())
        assert single.json()["propertyValue"] == value
    assert {
        key: _entries(simulator_client, instance_id, swagger_validator)[key]["propertyValue"]
        for key in changes
    } == changes
    fetched = simulator_client.get(f"/instances/{instance_id}")
    swagger_validator.check("/instances/{id}", "GET", fetched.json())
    assert {key: fetched.json()["configuration"][key] for key in changes} == changes
    assert fetched.json()["eventsEnabled"] is True


def test_the_three_part_form_lists_every_key_too(
    simulator: SimulatorHandle, simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    instance = create(simulator_client, closeio_body())
    headers = {"Authorization": f"{simulator.authorization}, Element {instance['token']}"}
    response = simulator_client.get("/instances/configuration", headers=headers)
    assert response.status_code == 200, response.text
    swagger_validator.check("/instances/configuration", "GET", response.json())
    by_id = _entries(simulator_client, instance["id"], swagger_validator)
    assert {entry["key"]: entry for entry in response.json()} == by_id


# -- GET /instances/count -------------------------------------------------------------------------


def test_count_is_not_an_instance_id(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    empty = simulator_client.get("/instances/count")
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"totalInstances": 0, "elementInstances": []}
    create(simulator_client, closeio_body(name="a"))
    create(simulator_client, closeio_body(name="b"))
    freshdesk = {
        "element": {"key": "freshdeskv2"},
        "name": "fd",
        "configuration": {"subdomain": "acme", "username": "key"},
    }
    create(simulator_client, freshdesk)
    counted = simulator_client.get("/instances/count")
    assert counted.status_code == 200, counted.text
    assert counted.json() == {
        "totalInstances": 3,
        "elementInstances": [
            {"elementId": 146, "elementKey": "closeio", "count": 2},
            {"elementId": 491, "elementKey": "freshdeskv2", "count": 1},
        ],
    }
    assert simulator.control.counters()["GET /instances/count"] == 2


# -- a PUT that echoes a GET or POST body ---------------------------------------------------------


def test_put_of_an_echoed_body_keeps_the_masked_secret(
    simulator: SimulatorHandle, simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    created = create(simulator_client, closeio_body(tags=["before"]))
    assert created["configuration"]["password"] == MASK
    # What the vendor's tests do to change tags: PUT the POST response back with new tags.
    put = simulator_client.put(f"/instances/{created['id']}", json={**created, "tags": ["after"]})
    assert put.status_code == 200, put.text
    swagger_validator.check("/instances/{id}", "PUT", put.json())
    assert put.json()["tags"] == ["after"]
    assert put.json()["configuration"]["password"] == MASK
    assert simulator.control.instance(created["id"])["configuration"]["password"] == CLOSEIO_PASSWORD

    # The same for a GET body sent back with PATCH, and for the one configuration entry.
    fetched = simulator_client.get(f"/instances/{created['id']}").json()
    patched = simulator_client.patch(f"/instances/{created['id']}", json={**fetched, "name": "renamed"})
    assert patched.status_code == 200, patched.text
    password_entry = _entries(simulator_client, created["id"], swagger_validator)["password"]
    _patch_entry(simulator_client, created["id"], password_entry["id"], MASK, swagger_validator)
    assert simulator.control.instance(created["id"])["configuration"]["password"] == CLOSEIO_PASSWORD

    # A real new value still replaces the secret, and a key that is not secret-typed takes the
    # mask's characters literally.
    configuration = {"password": "rotated-password", "username": MASK}
    simulator_client.put(f"/instances/{created['id']}", json={"configuration": configuration})
    stored = simulator.control.instance(created["id"])["configuration"]
    assert (stored["password"], stored["username"]) == ("rotated-password", MASK)


def test_echoed_oauth_secrets_are_kept(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    body = {
        "element": {"key": "sfdc"},
        "name": "sales",
        "configuration": {
            "oauth.api.key": "consumer-key",
            "oauth.api.secret": "consumer-secret",
            "oauth.callback.url": "https://example.com/callback",
        },
        "providerData": {"code": oauth_code(simulator_client)},
    }
    created = create(simulator_client, body)
    assert created["configuration"]["oauth.api.secret"] == MASK
    put = simulator_client.put(f"/instances/{created['id']}", json={**created, "tags": ["x"]})
    assert put.status_code == 200, put.text
    stored = simulator.control.instance(created["id"])["configuration"]
    assert (stored["oauth.api.key"], stored["oauth.api.secret"]) == ("consumer-key", "consumer-secret")
