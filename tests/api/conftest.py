"""The three generated CRDs on the session's real API server, for the server-side schema tests."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api import crd
from tests.fixtures.waiting import wait_until

ESTABLISH_TIMEOUT = 30.0


def install(ext: client.ApiextensionsV1Api, definition: dict[str, Any]) -> None:
    """Create the CRD (another module may have installed the same one first) and await Established."""
    try:
        ext.create_custom_resource_definition(definition)
    except ApiException as error:
        if error.status != 409:
            raise

    def established() -> bool:
        current = ext.read_custom_resource_definition(definition["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in current.status.conditions or [])

    wait_until(established, ESTABLISH_TIMEOUT, f"CRD {definition['metadata']['name']} to be Established")


@pytest.fixture(scope="session")
def api_crds(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    for resource in crd.RESOURCES:
        install(ext, crd.definition(resource))
