"""The chart on a real API server: its objects are valid, its RBAC is enough and not more.

The Deployment cannot run here (there is no kubelet), so the operator runs as a process that
authenticates as the chart's ServiceAccount with a token from the TokenRequest API: exactly the
identity, and so exactly the permissions, the pod would have.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.controlplane.cluster import ControlPlane
from tests.chart.support import CHART, helm, render
from tests.fixtures.kubernetes import api_client_for
from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import closeio_spec, ready_inputs, remotes_for, secret_data

SERVICE_ACCOUNT = "oco-open-connectors-operator"


def fresh_namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.mark.parametrize(
    "args", [[], ["--set", "operator.watchNamespaces={WATCHED}"]], ids=["cluster", "namespaced"]
)
def test_rendered_objects_pass_server_side_dry_run(
    control_plane: ControlPlane, core: client.CoreV1Api, args: list[str]
) -> None:
    release_ns, watched = fresh_namespace(core, "oco"), fresh_namespace(core, "watched")
    objects = render(*[a.replace("WATCHED", watched) for a in args], namespace=release_ns)
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={control_plane.kubeconfig}", "apply", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump_all(objects),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(objects)


@pytest.fixture
def namespaced_release(
    control_plane: ControlPlane, core: client.CoreV1Api, crd: None
) -> Iterator[tuple[str, str]]:
    release_ns, watched = fresh_namespace(core, "oco"), fresh_namespace(core, "sales")
    installed = helm(
        "install", "oco", str(CHART), "--namespace", release_ns,
        "--set", f"operator.watchNamespaces={{{watched}}}",
        kubeconfig=control_plane.kubeconfig,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    yield release_ns, watched
    uninstalled = helm("uninstall", "oco", "--namespace", release_ns, kubeconfig=control_plane.kubeconfig)
    assert uninstalled.returncode == 0, uninstalled.stderr


def service_account_kubeconfig(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str, path: Path
) -> Path:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(SERVICE_ACCOUNT, namespace, request).status.token
    return control_plane.kubeconfig_for(token, path)


def test_operator_as_the_charts_service_account_runs_a_full_lifecycle(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    simulator: SimulatorHandle,
    namespaced_release: tuple[str, str],
    tmp_path: Path,
) -> None:
    release_ns, watched = namespaced_release
    kubeconfig = service_account_kubeconfig(control_plane, core, release_ns, tmp_path / "sa-kubeconfig")
    operator = OperatorProcess(kubeconfig, watched, simulator.api_url, tmp_path / "operator.log").start()
    try:
        instances = Instances(api_client, watched)
        ready_inputs(core, watched, simulator)
        uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
        instances.wait_ready("crm")
        assert secret_data(core, watched, "crm-token")["token"]
        instances.patch_spec("crm", {"tags": ["crm", "updated"]})
        wait_until(lambda: instances.get("crm")["status"].get("observedGeneration") == 2, what="the update")
        assert "updated" in remotes_for(simulator, uid)[0]["tags"]
        instances.delete("crm")
        instances.wait_gone("crm")
        assert remotes_for(simulator, uid) == []
        assert "Forbidden" not in operator.log()
    finally:
        operator.stop()


def test_namespaced_rbac_grants_nothing_outside_its_namespaces(
    control_plane: ControlPlane, core: client.CoreV1Api, namespaced_release: tuple[str, str], tmp_path: Path
) -> None:
    release_ns, watched = namespaced_release
    other = fresh_namespace(core, "other")
    core.create_namespaced_secret(other, client.V1Secret(metadata=client.V1ObjectMeta(name="private")))
    token_kubeconfig = service_account_kubeconfig(control_plane, core, release_ns, tmp_path / "k")
    token = yaml.safe_load(token_kubeconfig.read_text())["users"][0]["user"]["token"]
    as_operator = api_client_for(control_plane, token, tmp_path)
    sa_core = client.CoreV1Api(as_operator)

    def denied(call: object) -> int:
        with pytest.raises(ApiException) as error:
            call()  # type: ignore[operator]
        return error.value.status

    assert sa_core.list_namespaced_secret(watched).items is not None  # allowed where it watches
    assert denied(lambda: sa_core.read_namespaced_secret("private", other)) == 403
    assert denied(lambda: sa_core.list_namespaced_secret(other)) == 403
    assert denied(lambda: sa_core.list_secret_for_all_namespaces()) == 403
    assert denied(lambda: sa_core.list_namespaced_config_map(watched)) == 403
    assert denied(lambda: sa_core.list_namespaced_pod(watched)) == 403
    assert denied(lambda: client.AppsV1Api(as_operator).list_namespaced_deployment(watched)) == 403
    assert denied(lambda: client.RbacAuthorizationV1Api(as_operator).list_namespaced_role(watched)) == 403
    assert denied(
        lambda: client.CustomObjectsApi(as_operator).list_namespaced_custom_object(
            "openconnectors.io", "v1alpha1", other, "connectorinstances"
        )
    ) == 403  # fmt: skip
