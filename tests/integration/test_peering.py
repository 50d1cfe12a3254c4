"""Two copies of the operator on the same objects (a stuck old pod, `replicas: 2`): with peering, as
the chart configures it (OCO_PEERING), the second pauses while the first runs and takes over when
the first stops (kube/peering.py).

Each copy talks to a platform of its own, so whatever a copy does shows on its platform. While the
first works, the second's platform hears nothing: that is watched for a window several times as
long as the first copy took to act on a new object (a copy that did not pause would have acted
just as fast). The takeover is then positive: the object the first copy could not finish (its
platform hung) is finished by the second, and only after the first stopped.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from connector_operator.kube.api import KubeAPI
from connector_operator.kube.keepalive import LIFETIME, Peer, keep_alive
from hack.controlplane.cluster import ControlPlane
from hack.processes import Operator, OperatorLauncher
from tests.fixtures.hostile_platform import HostilePlatform, hang
from tests.fixtures.operator import Instances, wait_until
from tests.fixtures.waiting import eventually, stays
from tests.integration.support import ACCOUNT, CLOSEIO_SECRET, closeio_spec, put_secret

PEERING = "oco-peering-test"
TENANT = "mallory"


def copy(
    name: str,
    control_plane: ControlPlane,
    namespace: str,
    platform: HostilePlatform,
    tmp_path: Path,
    peering: str = PEERING,
) -> Operator:
    """A copy of the operator as the chart starts it: OCO_PEERING (and POD_ID, kopf's identity)."""
    return OperatorLauncher(
        log_path=tmp_path / f"{name}.log",
        kubeconfig=control_plane.kubeconfig,
        api_url=platform.api_url,
        namespaces=[namespace],
        args=[f"--allowed-api-hosts={platform.host}:*"],
        env={"OCO_OPERATOR_NAMESPACE": namespace, "OCO_PEERING": peering, "POD_ID": name},
        metrics_port=0,
        name=name,
    ).start()


def peers(custom: client.CustomObjectsApi) -> set[str]:
    """The copies with a record in the peering object: one ClusterKopfPeering, also for a copy
    that watches namespaces (kube/peering.py)."""
    body = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", PEERING)
    return set((body.get("status") or {}).keys())


@pytest.mark.slow
def test_a_second_copy_pauses_while_the_first_runs_and_takes_over_when_it_stops(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    peering_crds: None,
    tmp_path: Path,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    put_secret(core, namespace, ACCOUNT, {"userSecret": "user", "organizationSecret": "organization"})
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": "key"})
    with HostilePlatform.running() as first_platform, HostilePlatform.running() as second_platform:
        first = copy("first", control_plane, namespace, first_platform, tmp_path)
        instances.create("one", closeio_spec())
        instances.wait_ready("one")
        second = copy("second", control_plane, namespace, second_platform, tmp_path)
        wait_until(lambda: peers(custom) >= {"first", "second"}, what="both copies' peering records")

        # The first copy's platform now hangs on creates: it starts one for "two" and never finishes.
        first_platform.on("POST", "/instances", hang())
        created = time.monotonic()
        instances.create("two", closeio_spec())
        wait_until(lambda: first_platform.count("POST") >= 2, what="the first copy creating 'two'")
        latency = time.monotonic() - created
        stays(lambda: second_platform.count() == 0, seconds=2 + 5 * latency, what="the second copy's silence")

        # The first stops (withdrawing its record): the second takes "two" over and finishes it.
        stopping = time.monotonic()
        first.stop()
        instances.wait_ready("two", timeout=30)
        first_call = min(seen.at for seen in second_platform.requests())
        assert first_call >= stopping, "the second copy acted before the first was stopped"
        # At once: the first withdrew its record; had it expired instead, that takes its lifetime (60 s).
        assert time.monotonic() - stopping < 20
        assert "second" in peers(custom)
        assert "first" not in peers(custom)
        second.stop()


async def test_the_record_is_refreshed_well_within_its_lifetime_and_withdrawn_on_stop(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str, peering_crds: None
) -> None:
    """kube/keepalive.py, on the real API server: the record kopf judges peers by stays far from
    expiring (kopf alone leaves it 5 to 10 s from expiry), and goes when the operator stops."""
    custom = client.CustomObjectsApi(api_client)
    name = f"{PEERING}-{namespace}"  # a peering object of its own (they are cluster-scoped)
    custom.create_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
    )  # fmt: skip
    login = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    api = KubeAPI(lambda: login)
    stopping: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    peer = Peer("this-copy", 7)
    task = asyncio.create_task(keep_alive(api, name, peer, stopping, refresh=0.2))

    async def lastseen() -> str | None:
        body = await asyncio.to_thread(
            custom.get_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings", name
        )
        record = (body.get("status") or {}).get(peer.identity)
        assert record is None or (record["priority"], record["lifetime"]) == (7, LIFETIME)
        return None if record is None else str(record["lastseen"])

    seen: set[str] = set()

    async def refreshed_three_times() -> bool:  # each refresh seen as it lands (0.2 s apart here, 15 s live)
        if (value := await lastseen()) is not None:
            seen.add(value)
        return len(seen) >= 3

    await eventually(refreshed_three_times, 30, "three refreshes of the peering record")
    stopping.set_result(None)
    await asyncio.wait_for(task, timeout=10)
    assert await lastseen() is None
    await api.aclose()
    custom.delete_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)


def tenant_with_every_permission(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str
) -> client.CustomObjectsApi:
    """An impersonated tenant with the common namespace-admin Role: every verb on every resource of
    every group, kopf.dev included, in her namespace (and nothing outside it)."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "tenant"}, "rules": [everything]})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "tenant"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": TENANT}],
        },
    )
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    api.set_default_header("Impersonate-User", TENANT)
    review = {"spec": {"resourceAttributes": {"namespace": namespace, "verb": "patch", "group": "kopf.dev",
                                              "resource": "kopfpeerings"}}}  # fmt: skip
    authz = client.AuthorizationV1Api(api)
    wait_until(
        lambda: authz.create_self_subject_access_review(review).status.allowed, what="the tenant's Role"
    )
    return client.CustomObjectsApi(api)


def pause_switch() -> dict[str, Any]:
    """tenant-findings N7: a record announcing a copy of a priority far above any real copy's
    (about 2.7e15, kube/peering.py), alive for 31 years."""
    now = datetime.datetime.now(datetime.UTC).isoformat()
    return {
        "status": {
            "elsewhere": {"priority": 9_000_000_000_000_000_000, "lifetime": 999_999_999, "lastseen": now}
        }
    }


def test_a_peering_record_in_a_tenants_namespace_pauses_nothing(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    instances: Instances,
    namespace: str,
    peering_crds: None,
    tmp_path: Path,
) -> None:
    """A namespaced copy peers in the ClusterKopfPeering only: a tenant who may write kopfpeerings
    in a watched namespace (a Role on `*`) writes a pause switch there, and the operator goes on
    with every object; the cluster-scoped object is out of her reach."""
    peering = f"tenant-proof-{namespace}"
    put_secret(core, namespace, ACCOUNT, {"userSecret": "user", "organizationSecret": "organization"})
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": "key"})
    mallory = tenant_with_every_permission(control_plane, api_client, namespace)
    # Before the operator starts (any restart): a KopfPeering of the operator's peering name in her
    # namespace, where kopf's namespaced peering would look. A copy that reads it starts paused
    # (kopf pauses a named peering until its first reading) and stays paused: no race decides.
    switch = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": peering},
        **pause_switch(),
    }
    mallory.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", switch)
    instances.create("before", closeio_spec())
    with HostilePlatform.running() as platform:
        operator = copy("only", control_plane, namespace, platform, tmp_path, peering=peering)
        try:
            instances.wait_ready("before")
            # And written again while it runs, fresh.
            mallory.patch_namespaced_custom_object(
                "kopf.dev", "v1", namespace, "kopfpeerings", peering, pause_switch()
            )
            instances.create("after", closeio_spec())
            instances.wait_ready("after")
            refused = None
            try:
                mallory.patch_cluster_custom_object(
                    "kopf.dev", "v1", "clusterkopfpeerings", peering, pause_switch()
                )
            except ApiException as error:
                refused = error.status
            assert refused == 403, "a namespaced Role reached the cluster-scoped peering object"
            assert "Pausing operations" not in operator.log_path.read_text()
        finally:
            operator.stop()
    client.CustomObjectsApi(api_client).delete_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", peering
    )
