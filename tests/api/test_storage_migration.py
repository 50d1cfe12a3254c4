"""Storage migration on the real API server, read back from etcd itself (kube/storage.py).

A copy of the ConnectorInstance CRD under a group of its own (the session's real CRDs serve every
other test): objects created while v1alpha1 is the storage version, then v1beta1 made the storage
version as the upgrade does. `migrate` must write each object once, so that etcd holds it at
v1beta1, and trim `status.storedVersions`; a second run finds nothing to do; an identity that may
not read CRDs gets None (a namespaced install)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import kopf
import pytest
from kubernetes import client

from connector_operator.api import crd as crds
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.storage import Kind, NotServed, migrate
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import wait_until

PLURAL = "connectorinstances"


@pytest.fixture
def group(api_client: client.ApiClient) -> Iterator[str]:
    """A CRD like ours under a group of this test's, stored at v1alpha1 (as the previous release
    installed it); removed at the end."""
    name = f"m{uuid.uuid4().hex[:8]}.migration.test"
    definition = copy.deepcopy(crds.definition(crds.INSTANCE))
    definition["metadata"]["name"] = f"{PLURAL}.{name}"
    definition["spec"]["group"] = name
    _, alpha = definition["spec"]["versions"]
    alpha.update(storage=True)
    alpha.pop("deprecated"), alpha.pop("deprecationWarning")
    definition["spec"]["versions"] = [alpha]
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(definition)
    wait_until(lambda: established(extensions, definition["metadata"]["name"]), what="the CRD established")
    yield name
    extensions.delete_custom_resource_definition(definition["metadata"]["name"])


def established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    status = extensions.read_custom_resource_definition(name).status
    return any(c.type == "Established" and c.status == "True" for c in status.conditions or [])


def etcd_url(control_plane: ControlPlane) -> str:
    """etcd's client URL, as the control plane started it."""
    for process in control_plane.processes:
        for arg in process.args:  # type: ignore[union-attr]
            if str(arg).startswith("--listen-client-urls="):
                return str(arg).split("=", 1)[1]
    pytest.skip("no etcd process of this run to read from")


def stored_version(control_plane: ControlPlane, group: str, namespace: str, name: str) -> str:
    """The apiVersion etcd holds the object in (custom resources are stored as JSON)."""
    key = base64.b64encode(f"/registry/{group}/{PLURAL}/{namespace}/{name}".encode()).decode()
    answer = httpx.post(f"{etcd_url(control_plane)}/v3/kv/range", json={"key": key}, timeout=10).json()
    stored: dict[str, Any] = json.loads(base64.b64decode(answer["kvs"][0]["value"]))
    return str(stored["apiVersion"])


async def test_objects_stored_at_v1alpha1_are_written_at_v1beta1_and_the_crd_trimmed(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str, group: str
) -> None:
    custom, extensions = client.CustomObjectsApi(api_client), client.ApiextensionsV1Api(api_client)
    names = [f"crm-{i}" for i in range(7)]
    for name in names:
        body = {"apiVersion": f"{group}/v1alpha1", "kind": "ConnectorInstance", "metadata": {"name": name}}
        body["spec"] = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}}
        custom.create_namespaced_custom_object(group, "v1alpha1", namespace, PLURAL, body)
    crd_name = f"{PLURAL}.{group}"
    # The upgrade: the new CRD serves v1beta1 as the storage version and still v1alpha1.
    upgraded = copy.deepcopy(crds.definition(crds.INSTANCE))
    current = extensions.read_custom_resource_definition(crd_name)
    current.spec.versions = [{**version, "name": version["name"]} for version in upgraded["spec"]["versions"]]
    extensions.replace_custom_resource_definition(crd_name, current)
    assert extensions.read_custom_resource_definition(crd_name).status.stored_versions == [
        "v1alpha1",
        "v1beta1",
    ]
    assert {stored_version(control_plane, group, namespace, n) for n in names} == {f"{group}/v1alpha1"}
    generations = {
        n: custom.get_namespaced_custom_object(group, "v1beta1", namespace, PLURAL, n)["metadata"][
            "generation"
        ]
        for n in names
    }

    login = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    api = KubeAPI(lambda: login)
    try:
        done = await migrate(api, [Kind(group, PLURAL, namespaced=True)], "v1beta1")
        again = await migrate(api, [Kind(group, PLURAL, namespaced=True)], "v1beta1")
        nobody = KubeAPI(
            lambda: kopf.ConnectionInfo(
                server=control_plane.server,
                ca_path=str(control_plane.ca_file),
                token=control_plane.nobody_token,
            )
        )
        try:
            refused = await migrate(nobody, [Kind(group, PLURAL, namespaced=True)], "v1beta1")
        finally:
            await nobody.aclose()
    finally:
        await api.aclose()

    assert done == {crd_name: len(names)}
    assert again == {}  # trimmed: nothing left to do
    assert refused is None
    assert {stored_version(control_plane, group, namespace, n) for n in names} == {f"{group}/v1beta1"}
    assert extensions.read_custom_resource_definition(crd_name).status.stored_versions == ["v1beta1"]
    after = {
        n: custom.get_namespaced_custom_object(group, "v1beta1", namespace, PLURAL, n)["metadata"][
            "generation"
        ]
        for n in names
    }
    assert after == generations  # a no-op write: no spec changed, no generation moved
    # The earlier version still answers, with the same objects.
    listed = custom.list_namespaced_custom_object(group, "v1alpha1", namespace, PLURAL)["items"]
    assert sorted(i["metadata"]["name"] for i in listed) == sorted(names)


async def test_nothing_is_trimmed_while_the_new_crd_is_not_applied(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str, group: str
) -> None:
    """Review of issue 23: `helm upgrade` without the new CRDs first (Helm never upgrades them)
    starts the new operator against a CRD that stores only v1alpha1. The API server would accept
    any storedVersions written through /status: trimmed then, the objects still stored at v1alpha1
    would be forgotten. The migration refuses instead, and leaves everything as it was."""
    custom, extensions = client.CustomObjectsApi(api_client), client.ApiextensionsV1Api(api_client)
    body = {"apiVersion": f"{group}/v1alpha1", "kind": "ConnectorInstance", "metadata": {"name": "crm"}}
    body["spec"] = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}}
    custom.create_namespaced_custom_object(group, "v1alpha1", namespace, PLURAL, body)
    login = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    api = KubeAPI(lambda: login)
    try:
        with pytest.raises(NotServed, match="apply the new CRDs"):
            await migrate(api, [Kind(group, PLURAL, namespaced=True)], "v1beta1")
    finally:
        await api.aclose()
    crd_name = f"{PLURAL}.{group}"
    assert extensions.read_custom_resource_definition(crd_name).status.stored_versions == ["v1alpha1"]
    assert stored_version(control_plane, group, namespace, "crm") == f"{group}/v1alpha1"
