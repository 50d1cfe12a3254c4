"""The chart on a real API server: its objects are valid, its RBAC is enough and not more.

The Deployment cannot run here (there is no kubelet), so the operator runs as a process that
authenticates as the chart's ServiceAccount with a token from the TokenRequest API: exactly the
identity, and so exactly the permissions, the pod would have, and the admission policies that
the chart binds to that identity.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.controlplane.cluster import ControlPlane
from hack.processes import OperatorLauncher
from tests.chart.conftest import Release, fresh_namespace, refusal, service_account_kubeconfig
from tests.chart.support import CHART, deployment_env, render
from tests.fixtures.kubernetes import api_client_for
from tests.fixtures.operator import Instances, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_SECRET,
    closeio_spec,
    ready_inputs,
    remotes_for,
    secret_data,
)

OWN_SECRET = ("OCO_OPERATOR_NAMESPACE", "OCO_DIGEST_KEY_SECRET")
# ... and kopf peering, so that its RBAC (create, watch and patch the peering object) is exercised too.
FROM_CHART = (*OWN_SECRET, "OCO_PEERING")


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


@pytest.mark.parametrize("namespaced", [True, False], ids=["namespaced", "cluster"])
def test_operator_as_the_charts_service_account_runs_a_full_lifecycle(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    simulator: SimulatorHandle,
    install_chart: Callable[..., Release],
    tmp_path: Path,
    namespaced: bool,
) -> None:
    """With the admission policies on (the default): every write the operator makes passes."""
    release = install_chart(namespaced=namespaced)
    watched = release.watched[0]
    operator = OperatorLauncher(
        log_path=tmp_path / "operator.log",
        kubeconfig=service_account_kubeconfig(control_plane, core, release.namespace, tmp_path / "sa"),
        api_url=simulator.api_url,
        namespaces=release.watched if namespaced else (),
        # Where its own Secret lives, and its peering, as the chart tells the pod.
        env={k: v for k, v in deployment_env(namespace=release.namespace).items() if k in FROM_CHART},
        metrics_port=0,  # none: the default port could be taken by another test run
        timeout=30,
    ).start()
    try:
        instances = Instances(api_client, watched)
        ready_inputs(core, watched, simulator)
        uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
        instances.wait_ready("crm")
        # It works, so it created its peering object and found no older copy there: one
        # ClusterKopfPeering, the namespaced install's too (no pause switch in a tenant's namespace).
        custom = client.CustomObjectsApi(api_client)
        peering = deployment_env(namespace=release.namespace)["OCO_PEERING"]
        assert custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
        assert not custom.list_namespaced_custom_object("kopf.dev", "v1", watched, "kopfpeerings")["items"]
        token = secret_data(core, watched, "crm-token")
        assert token is not None
        assert token["token"]
        # Someone edits the token Secret: the operator writes it back (a PATCH of its own Secret).
        tampered = {"data": {"token": base64.b64encode(b"tampered").decode()}}
        core.patch_namespaced_secret("crm-token", watched, tampered)
        wait_until(lambda: (secret_data(core, watched, "crm-token") or {}).get("token") == token["token"])
        instances.patch_spec("crm", {"tags": ["crm", "updated"]})
        wait_until(lambda: instances.get("crm")["status"].get("observedGeneration") == 2, what="the update")
        assert "updated" in remotes_for(simulator, uid)[0]["tags"]
        instances.delete("crm")
        instances.wait_gone("crm")
        assert remotes_for(simulator, uid) == []
        log = operator.log_path.read_text()
        assert "Forbidden" not in log
        assert "Not enough permissions" not in log  # kopf's warning when RBAC is short
    finally:
        operator.stop()


def test_namespaced_rbac_grants_nothing_outside_its_namespaces(
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    install_chart: Callable[..., Release],
    tmp_path: Path,
) -> None:
    release = install_chart(namespaced=True)
    watched = release.watched[0]
    other = fresh_namespace(core, "other")
    core.create_namespaced_secret(other, client.V1Secret(metadata=client.V1ObjectMeta(name="private")))
    token_kubeconfig = service_account_kubeconfig(control_plane, core, release.namespace, tmp_path / "k")
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
            "openconnectors.io", "v1beta1", other, "connectorinstances"
        )
    ) == 403  # fmt: skip
    # In its own namespace: its digest key Secret (Opaque, labelled), and reads of the Secrets
    # there (ClusterConnectorAccounts keep their credentials in it: tests/chart/test_accounts.py).
    digest_key = deployment_env(namespace=release.namespace)["OCO_DIGEST_KEY_SECRET"]
    labelled = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
    own = client.V1Secret(metadata=client.V1ObjectMeta(name=digest_key, labels=labelled), type="Opaque")
    assert sa_core.create_namespaced_secret(release.namespace, own).metadata.name == digest_key
    assert sa_core.read_namespaced_secret(digest_key, release.namespace).type == "Opaque"
    core.create_namespaced_secret(
        release.namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="other"))
    )
    assert denied(lambda: sa_core.delete_namespaced_secret("other", release.namespace)) == 403
    assert denied(lambda: sa_core.delete_namespaced_secret(digest_key, release.namespace)) == 403
    plain = client.V1Secret(metadata=client.V1ObjectMeta(name="plain"))
    assert "AdmissionPolicy" in str(
        refusal(lambda: sa_core.create_namespaced_secret(release.namespace, plain, dry_run="All"))
    )


def readme_release_commands() -> dict[str, str]:
    """The commands of the chart README that release what an uninstall left stuck, by comment."""
    text = (CHART / "README.md").read_text()
    block = text.split("Release what is stuck")[1].split("```sh\n")[1].split("```")[0]
    commands: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("# "):
            current = line[2:]
            commands[current] = ""
        else:
            commands[current] += line + "\n"
    return commands


def test_uninstalled_first_the_documented_patches_release_what_is_stuck(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    simulator: SimulatorHandle,
    install_chart: Callable[..., Release],
    tmp_path: Path,
) -> None:
    release = install_chart(namespaced=True)
    watched = release.watched[0]
    instances = Instances(api_client, watched)
    with OperatorLauncher(
        log_path=tmp_path / "operator.log",
        kubeconfig=service_account_kubeconfig(control_plane, core, release.namespace, tmp_path / "sa"),
        api_url=simulator.api_url,
        namespaces=release.watched,
        env={k: v for k, v in deployment_env(namespace=release.namespace).items() if k in OWN_SECRET},
        metrics_port=0,
        timeout=30,
    ).start():
        ready_inputs(core, watched, simulator)
        uid = instances.create("crm", closeio_spec())["metadata"]["uid"]
        instances.wait_ready("crm")
    # The operator is gone, as after `helm uninstall`: nothing removes its finalizers any more.
    instances.delete("crm")
    for name in (ACCOUNT, CLOSEIO_SECRET):
        core.delete_namespaced_secret(name, watched)
    assert instances.get("crm") is not None, "the object should be stuck on its finalizer"

    commands = readme_release_commands()
    release_object = commands["a ConnectorInstance"].replace("NAME", "crm").replace("NS", watched)
    for command in (release_object, commands["every such Secret, whatever the position of the finalizer"]):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    instances.wait_gone("crm")
    wait_until(lambda: secret_data(core, watched, ACCOUNT) is None, what="the account Secret to go")
    assert secret_data(core, watched, CLOSEIO_SECRET) is None
    assert remotes_for(simulator, uid), "the remote instance stays: the README says to delete it there"
