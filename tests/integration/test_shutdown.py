"""A stop takes well under the chart's terminationGracePeriodSeconds, whatever the operator is doing
(shutdown.py): SIGTERM, then the time until the process is gone.

The states: waiting on a platform that does not answer (in the reconcile loop's create and update,
and in the delete handler); starting while the DNS server does not answer (a pod without cluster
DNS, where kopf's kubernetes.default.svc cannot be resolved and every lookup waits out the
resolver's timeouts); and running with peering while the API server stops answering (withdrawing
the peering record then hangs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from connector_operator.shutdown import STOP_GRACE
from hack.controlplane.cluster import ControlPlane
from hack.processes import Child, OperatorLauncher
from tests.chart.support import render
from tests.fixtures.hostile_platform import HostilePlatform, hang
from tests.fixtures.mountns import require_root
from tests.fixtures.network import Forwarder, SilentDNS
from tests.fixtures.operator import Instances, wait_until
from tests.integration.incluster import loopback_address, service_account_files, start_in_pod
from tests.integration.support import ACCOUNT, CLOSEIO_SECRET, closeio_spec, put_secret

# kopf's own shutdown gets STOP_GRACE seconds before what is left of it is cancelled; the rest is
# the process ending. The claim: this bound, in every state.
BOUND = STOP_GRACE + 1.5


def grace_period() -> int:
    [deployment] = [o for o in render() if o["kind"] == "Deployment"]
    return int(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


def test_the_bound_is_well_under_the_charts_grace_period() -> None:
    assert grace_period() / 3 >= BOUND


def stop(child: Child) -> float:
    seconds = child.stop(timeout=60)
    assert child.process.returncode == 0, child.log_path.read_text()[-3000:]
    print(f"stopped in {seconds:.2f}s")
    return seconds


def allow(platform: HostilePlatform) -> str:
    return f"--allowed-api-hosts={platform.host}:*"


def platform_inputs(core: client.CoreV1Api, namespace: str) -> None:
    put_secret(core, namespace, ACCOUNT, {"userSecret": "user", "organizationSecret": "organization"})
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": "key"})


CREATE, UPDATE, DELETE = ("POST", "/instances"), ("PUT", "/instances/{id}"), ("DELETE", "/instances/{id}")


@pytest.mark.parametrize("route", [CREATE, UPDATE, DELETE], ids=["create", "update", "delete"])
def test_stops_within_the_bound_mid_request_to_a_platform_that_does_not_answer(
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    platform_server: HostilePlatform,
    tmp_path: Path,
    route: tuple[str, str],
) -> None:
    platform_inputs(core, namespace)
    operator = OperatorLauncher(
        log_path=tmp_path / "operator.log",
        kubeconfig=control_plane.kubeconfig,
        api_url=platform_server.api_url,
        namespaces=[namespace],
        args=[allow(platform_server)],
        env={"OCO_OPERATOR_NAMESPACE": namespace},
        metrics_port=0,
    ).start()
    actions: dict[tuple[str, str], Callable[[], None]] = {
        CREATE: lambda: instances.create("crm", closeio_spec()) and None,
        UPDATE: lambda: instances.patch_spec("crm", {"tags": ["updated"]}) and None,
        DELETE: lambda: instances.delete("crm"),
    }
    if route != CREATE:
        instances.create("crm", closeio_spec())
        instances.wait_ready("crm")
    platform_server.on(*route, hang())
    actions[route]()
    wait_until(lambda: platform_server.count(*route) >= 1, what=f"{route} in flight")
    assert stop(operator.child) < BOUND


def test_stops_within_the_bound_while_the_dns_server_does_not_answer(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> None:
    """As a pod without cluster DNS whose kubelet sets no KUBERNETES_SERVICE_HOST: kopf's
    kubernetes.default.svc must be looked up, and the lookup waits out the resolver's timeouts."""
    require_root()
    with SilentDNS.running(loopback_address()) as dns:
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(dns.resolv_conf())
        child, _ = start_in_pod(
            log_path=tmp_path / "operator.log",
            home=tmp_path / "home",
            namespaces=[namespace],
            api_url="http://127.0.0.1:9/elements/api-v2",
            service_account=service_account_files(control_plane, core, namespace, tmp_path / "sa"),
            env={"KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""},
            files={"/etc/resolv.conf": resolv},
            wait=False,
        )
        wait_until(lambda: dns.queries, what="a DNS lookup in flight")
        assert stop(child) < BOUND


def test_stops_within_the_bound_with_peering_while_the_api_server_does_not_answer(
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    platform_server: HostilePlatform,
    peering_crds: None,
    tmp_path: Path,
) -> None:
    platform_inputs(core, namespace)
    with Forwarder.running("127.0.0.1", control_plane.api_port) as link:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            control_plane.kubeconfig.read_text().replace(f":{control_plane.api_port}", f":{link.port}")
        )
        operator = OperatorLauncher(
            log_path=tmp_path / "operator.log",
            kubeconfig=kubeconfig,
            api_url=platform_server.api_url,
            namespaces=[namespace],
            args=[allow(platform_server)],
            env={"OCO_OPERATOR_NAMESPACE": namespace, "OCO_PEERING": "oco-test"},
            metrics_port=0,
        ).start()
        instances.create("crm", closeio_spec())
        instances.wait_ready("crm")
        link.freeze()
        assert stop(operator.child) < BOUND
