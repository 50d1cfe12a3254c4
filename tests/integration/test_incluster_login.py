"""In-cluster login, both ways a pod can be configured (kube/incluster.py).

The operator runs as a pod's process: the ServiceAccount's token, CA and namespace at
/var/run/secrets/kubernetes.io/serviceaccount (its own mount namespace), no kubeconfig at all.

- With KUBERNETES_SERVICE_HOST/PORT set (every kubelet sets them) it must reach the API server
  they name, although kubernetes.default.svc resolves nowhere here: a pod without cluster DNS.
  kopf alone would retry `GET https://kubernetes.default.svc/apis` forever.
- Without them it falls back on kopf's `https://kubernetes.default.svc`: here an /etc/hosts entry
  of its own and a relay on port 443 lead that name to the API server, and the relay shows that
  the connections took that way.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from tests.fixtures.mountns import require_root
from tests.fixtures.network import Forwarder
from tests.fixtures.operator import Instances
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.incluster import loopback_address, service_account_files, start_in_pod
from tests.integration.support import closeio_spec, ready_inputs

DIGEST_KEY = "open-connectors-operator-digest-key"


def reconciles_as_a_pod(
    instances: Instances, core: client.CoreV1Api, namespace: str, simulator: SimulatorHandle
) -> None:
    ready_inputs(core, namespace, simulator)
    instances.create("crm", closeio_spec())
    instances.wait_ready("crm")
    # Its own Secret went where the mounted namespace file says (no --operator-namespace given).
    assert core.read_namespaced_secret(DIGEST_KEY, namespace).data["key"]


def test_logs_in_to_the_api_server_the_environment_names(
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    simulator: SimulatorHandle,
    tmp_path: Path,
) -> None:
    require_root()
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("kubernetes.default.svc", 443)  # else this test would prove nothing
    child, _ = start_in_pod(
        log_path=tmp_path / "operator.log",
        home=tmp_path / "home",
        namespaces=[namespace],
        api_url=simulator.api_url,
        service_account=service_account_files(control_plane, core, namespace, tmp_path / "sa"),
        env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(control_plane.api_port)},
    )
    try:
        reconciles_as_a_pod(instances, core, namespace, simulator)
        assert "kubernetes.default.svc" not in child.log_path.read_text()
    finally:
        child.stop()


def test_without_the_environment_falls_back_on_kubernetes_default_svc(
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    simulator: SimulatorHandle,
    tmp_path: Path,
) -> None:
    require_root()
    address = loopback_address()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{address} kubernetes.default.svc\n")
    with Forwarder.running("127.0.0.1", control_plane.api_port, host=address, port=443) as relay:
        child, _ = start_in_pod(
            log_path=tmp_path / "operator.log",
            home=tmp_path / "home",
            namespaces=[namespace],
            api_url=simulator.api_url,
            service_account=service_account_files(control_plane, core, namespace, tmp_path / "sa"),
            env={"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""},
            files={"/etc/hosts": hosts},
        )
        try:
            reconciles_as_a_pod(instances, core, namespace, simulator)
            assert relay.connections > 0
        finally:
            child.stop()
