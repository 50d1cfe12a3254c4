"""The local control plane is a real Kubernetes API server, not a stand-in.

Each test checks a behaviour a mock would not have: the stamped server version, RBAC denial,
CEL validation in a CRD, status-subresource semantics and TokenRequest-issued identities.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.controlplane import build, cluster
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.kubernetes import api_client_for
from tests.fixtures.waiting import wait_until

GROUP = "test.openconnectors.io"
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
                                "x-kubernetes-validations": [
                                    {"rule": "self.min <= self.max", "message": "min must not exceed max"}
                                ],
                            },
                            "status": {"type": "object", "properties": {"seen": {"type": "integer"}}},
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widget_crd(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(WIDGET_CRD)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(f"widgets.{GROUP}")
        return {c.type: c.status for c in (crd.status.conditions or [])}.get("Established") == "True"

    wait_until(established, 30, "the Widget CRD to be Established")


def test_server_reports_the_pinned_version(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == build.KUBE_APISERVER.version
    assert (info.major, info.minor) == ("1", build.KUBE_APISERVER.version.split(".")[1])


def test_rbac_denies_an_unprivileged_identity(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, core: client.CoreV1Api
) -> None:
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="s")))
    nobody = client.CoreV1Api(api_client_for(control_plane, control_plane.nobody_token, tmp_path))
    with pytest.raises(ApiException) as denied:
        nobody.read_namespaced_secret("s", namespace)
    assert denied.value.status == 403
    assert 'User "nobody" cannot get resource "secrets"' in json.loads(denied.value.body)["message"]


@pytest.mark.usefixtures("widget_crd")
def test_cel_rule_in_a_crd_rejects_a_bad_object(custom: client.CustomObjectsApi, namespace: str) -> None:
    bad = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"min": 5, "max": 1},
    }
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", bad)
    assert rejected.value.status == 422
    assert "min must not exceed max" in rejected.value.body
    bad["spec"] = {"min": 1, "max": 5}
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", bad)


@pytest.mark.usefixtures("widget_crd")
def test_status_update_ignores_spec_changes(custom: client.CustomObjectsApi, namespace: str) -> None:
    obj = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"min": 1, "max": 2},
    }
    custom.create_namespaced_custom_object(GROUP, "v1", namespace, "widgets", obj)
    custom.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, "widgets", "w", {"spec": {"min": 0, "max": 9}, "status": {"seen": 7}}
    )
    stored = custom.get_namespaced_custom_object(GROUP, "v1", namespace, "widgets", "w")
    assert stored["spec"] == {"min": 1, "max": 2}
    assert stored["status"] == {"seen": 7}


def test_token_request_issues_a_working_service_account_token(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, core: client.CoreV1Api
) -> None:
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot"))
    )
    token = core.create_namespaced_service_account_token(
        "bot", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    as_bot = api_client_for(control_plane, token, tmp_path)
    review = client.AuthenticationV1Api(as_bot).create_self_subject_review(client.V1SelfSubjectReview())
    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:bot"
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(as_bot).list_namespaced_secret(namespace)
    assert denied.value.status == 403


def test_a_port_taken_before_the_api_server_binds_it_means_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clean-clone run failed once at a plane's start: `free_port` gave a port that another
    worker's process took before kube-apiserver bound it ("address already in use")."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([cluster.free_port(), cluster.free_port(), taken.getsockname()[1]])
    real = cluster.free_port
    monkeypatch.setattr(cluster, "free_port", lambda: next(ports, None) or real())
    plane = cluster.start(tmp_path / "plane")
    try:
        assert plane.api_port != taken.getsockname()[1]
    finally:
        plane.stop()
        taken.close()
