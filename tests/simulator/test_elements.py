"""The element catalog: what `GET /elements/{key}` tells a client about required configuration."""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.support import assert_error


def _definitions(element: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["key"]: entry for entry in element["configuration"]}


def test_closeio_definition(simulator_client: httpx.Client) -> None:
    response = simulator_client.get("/elements/closeio")
    assert response.status_code == 200
    element = response.json()
    assert (element["id"], element["key"], element["name"], element["hub"]) == (
        146,
        "closeio",
        "Close.io",
        "crm",
    )
    assert element["authenticationType"] == "basic"
    definitions = _definitions(element)
    for entry in definitions.values():
        assert {"key", "name", "type", "required", "defaultValue", "hideFromConsole", "description"} <= set(
            entry
        )
        assert isinstance(entry["required"], bool)
        assert isinstance(entry["hideFromConsole"], bool)
    assert definitions["username"]["required"] is True
    assert definitions["username"]["type"] != "PASSWORD"
    assert definitions["password"]["type"] == "PASSWORD"
    assert definitions["base.url"]["defaultValue"] == "https://app.close.io/api/v1"
    assert definitions["base.url"]["hideFromConsole"] is True
    assert definitions["pagination.offset"]["defaultValue"] == "true"
    assert definitions["pagination.max"]["defaultValue"] == "100"
    assert "event.vendor.type" in definitions
    assert simulator_client.get("/elements/146").json()["key"] == "closeio"
    assert simulator_client.get("/elements/closeio/configuration").json() == element["configuration"]


def test_catalog_has_basic_and_oauth_elements(simulator_client: httpx.Client) -> None:
    elements = simulator_client.get("/elements").json()
    by_auth: dict[str, list[str]] = {}
    for element in elements:
        assert isinstance(element["id"], int)
        assert {"key", "name", "hub", "authenticationType"} <= set(element)
        by_auth.setdefault(element["authenticationType"], []).append(element["key"])
    assert "closeio" in by_auth["basic"]
    assert len(by_auth["basic"]) >= 5
    assert by_auth["oauth2"]
    assert sorted(simulator_client.get("/elements/keys").json()) == sorted(e["key"] for e in elements)
    assert len({element["id"] for element in elements}) == len(elements)


def test_documented_required_keys(simulator_client: httpx.Client) -> None:
    expected = {
        "freshdeskv2": {"subdomain", "username"},
        "freshservice": {"username", "password", "subdomain"},
        "jira": {"username", "password", "base.url"},
        "bamboohr": {"username", "company.name"},
        "sfdc": {"oauth.api.key", "oauth.api.secret", "oauth.callback.url"},
    }
    for key, required in expected.items():
        definitions = _definitions(simulator_client.get(f"/elements/{key}").json())
        assert {k for k, entry in definitions.items() if entry["required"]} == required, key


def test_unknown_element_is_404_naming_it(simulator_client: httpx.Client) -> None:
    assert_error(simulator_client.get("/elements/acme-unknown"), 404, "acme-unknown")
    assert_error(simulator_client.get("/elements/99999"), 404, "99999")
