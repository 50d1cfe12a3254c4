"""Every 200 body of an operation the vendor Swagger describes validates against that Swagger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import SwaggerValidator, closeio_body, create, oauth_code


def test_validator_rejects_a_wrongly_typed_instance(swagger_validator: SwaggerValidator) -> None:
    # Guard against a validator that silently resolves nothing and accepts everything.
    validator = swagger_validator.validator("/instances/{id}", "GET")
    with pytest.raises(ValidationError):
        validator.validate({"cachingEnabled": False, "id": "not-a-number"})
    with pytest.raises(ValidationError):
        validator.validate({"cachingEnabled": False, "element": {"key": 5}})
    with pytest.raises(ValidationError):
        validator.validate({"id": 1})  # cachingEnabled is the one required property


def _assert_string_config(instance: dict[str, Any]) -> None:
    # The Swagger's ConfigurationPropertyMap cannot express "all values are strings"; check it here.
    assert all(isinstance(value, str) for value in instance["configuration"].values())


def test_instance_operations_match_the_swagger(
    simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    body = closeio_body(tags=["a", "b"], configuration={"username": "k", "pagination.max": 10})
    created = create(simulator_client, body)
    swagger_validator.check("/instances", "POST", created)
    _assert_string_config(created)
    instance_id = created["id"]

    listed = simulator_client.get("/instances")
    assert listed.status_code == 200
    swagger_validator.check("/instances", "GET", listed.json())

    fetched = simulator_client.get(f"/instances/{instance_id}")
    assert fetched.status_code == 200
    swagger_validator.check("/instances/{id}", "GET", fetched.json())

    put = simulator_client.put(f"/instances/{instance_id}", json={"name": "renamed", "tags": ["c"]})
    assert put.status_code == 200
    swagger_validator.check("/instances/{id}", "PUT", put.json())

    patch = simulator_client.patch(f"/instances/{instance_id}", json={"configuration": {"pagination.max": 5}})
    assert patch.status_code == 200
    swagger_validator.check("/instances/{id}", "PATCH", patch.json())
    _assert_string_config(patch.json())


def test_every_catalog_element_produces_schema_valid_instances(
    simulator: SimulatorHandle, simulator_client: httpx.Client, swagger_validator: SwaggerValidator
) -> None:
    elements = simulator_client.get("/elements").json()
    for element in elements:
        definition = simulator_client.get(f"/elements/{element['key']}").json()
        configuration = {
            entry["key"]: "https://example.com" if "url" in entry["key"] else "value"
            for entry in definition["configuration"]
            if entry["required"]
        }
        body: dict[str, Any] = {
            "element": {"key": element["key"]},
            "name": element["key"],
            "configuration": configuration,
        }
        if element["authenticationType"].startswith("oauth"):
            callback = configuration["oauth.callback.url"]
            code = oauth_code(simulator_client, element["key"], client_id="value", callback=callback)
            body["providerData"] = {"code": code}
        created = create(simulator_client, body)
        swagger_validator.check("/instances", "POST", created)
        assert created["element"]["key"] == element["key"]
    listed = simulator_client.get("/instances")
    swagger_validator.check("/instances", "GET", listed.json())
    assert len(listed.json()) == len(elements) == len(simulator.control.instances())
