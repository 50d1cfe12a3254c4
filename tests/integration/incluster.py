"""The operator as a pod's process: a ServiceAccount's files where the kubelet mounts them (in a
private mount namespace, tests/fixtures/mountns.py), no kubeconfig, and the environment a pod has.

Used by the in-cluster login tests and the shutdown tests. The ServiceAccount is bound to
cluster-admin: these tests are about logging in and stopping; the chart's RBAC has its own tests.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubernetes import client

from hack.controlplane.cluster import ControlPlane, free_port
from hack.processes import Child, operator_command, spawn, wait_until_ok
from tests.fixtures.mountns import with_private_mounts

START_TIMEOUT = 30.0


def loopback_address() -> str:
    """A loopback address of its own (all of 127/8 is loopback), so that concurrent test runs can
    each bind a privileged port (53, 443) without meeting."""
    return f"127.{random.randint(16, 250)}.{random.randint(1, 250)}.{random.randint(1, 250)}"


def service_account_files(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str, directory: Path
) -> Path:
    """A ServiceAccount in `namespace` (cluster-admin) and its token, ca.crt and namespace files."""
    name = f"operator-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": f"{namespace}-{name}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        }
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = core.create_namespaced_service_account_token(name, namespace, request).status.token
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_text(control_plane.ca_file.read_text())
    (directory / "namespace").write_text(namespace)
    return directory


def start_in_pod(
    *,
    log_path: Path,
    home: Path,
    namespaces: Sequence[str],
    api_url: str,
    service_account: Path | None,
    env: Mapping[str, str],
    files: Mapping[str, Path] | None = None,
    args: Sequence[str] = (),
    wait: bool = True,
) -> tuple[Child, str]:
    """`open-connectors-operator run` as in a pod: no kubeconfig (KUBECONFIG empty, an empty HOME),
    the ServiceAccount mounted, `env` added. Returns the child and its /healthz URL; waits for it
    unless `wait` is false."""
    health_port = free_port()
    command = operator_command(
        api_url=api_url, health_port=health_port, namespaces=namespaces, metrics_port=0, args=args
    )
    home.mkdir(parents=True, exist_ok=True)
    child = spawn(
        "operator",
        with_private_mounts(command, files=files, service_account=service_account),
        log_path,
        env={"KUBECONFIG": "", "HOME": str(home), **env},
    )
    health = f"http://127.0.0.1:{health_port}/healthz"
    if wait:
        wait_until_ok(child, health, START_TIMEOUT)
    return child, health
