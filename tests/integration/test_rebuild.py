"""A cluster rebuilt from Git, and a Velero-style restore (issue 18): every object comes back with a
new UID and no status.

With `--cluster-name` each instance carries a claim (`k8s-claim:<cluster>/<namespace>/<name>`), and
an object with no `status.instanceID` re-adopts the instance carrying its own claim with one PUT:
no POST, the same instance ID, the same token in its token Secret, an Event `Reclaimed`. Without a
cluster name (the README's warning) a rebuild creates a second instance per object; the first ones
stay, and the account reports them as strays (`status.strayInstances`, `status.strayInstanceIDs`,
one Warning Event `StrayInstance` each), never deleting them.

Why the operator runs as a process: a rebuild is a new cluster seen by a new operator, with nothing
of the old one in memory (caches, kopf's progress, what it created), and only a process stopped
before the wipe and started after it has exactly nothing. The platform, the simulator of the
session, keeps running through the wipe, as the real platform would.

Why a control plane of its own: the wipe (`ControlPlane.wipe`, tests/fixtures/operator.py's
`rebuild_cluster`) throws away everything in etcd, including what other modules' session-scoped
fixtures put there once (the kopf peering CRDs, the chart's). This module's own plane costs one
start (about 4 s) and one stop (about 1 s); a wipe costs about as much as a start.

Objects are created in parallel through the API server and every wait is on conditions (one LIST
per poll), never a sleep.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, KIND, PLURAL, VERSION
from hack.controlplane import cluster
from tests.fixtures.operator import install_crds, rebuild_cluster, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    account_values,
    closeio_spec,
    put_secret,
)

CLUSTER = "ci-rebuild"
CLUSTER_FLAG = f"--cluster-name={CLUSTER}"
ACCOUNTS = "connectoraccounts"
CLUSTER_ACCOUNTS = "clusterconnectoraccounts"
NAMESPACED_ACCOUNT = "team"
PARALLEL = 16  # API calls in flight while applying the manifests
READY_TIMEOUT = 90.0
UID_TAG = "k8s-uid:"
CLAIM_TAG = "k8s-claim:"


# -- this module's own control plane (see the docstring) -------------------------------------------


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ControlPlane]:
    with cluster.running(tmp_path_factory.mktemp("rebuild-controlplane")) as plane:
        yield plane


@pytest.fixture(scope="module")
def api_client(control_plane: cluster.ControlPlane) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(control_plane.kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = PARALLEL  # the manifests are applied in parallel
    api = client.ApiClient(configuration)
    yield api
    api.close()


@pytest.fixture(scope="module")
def crd(api_client: client.ApiClient) -> None:
    install_crds(api_client)


# -- the manifests, as Git holds them ----------------------------------------------------------------


@dataclass(frozen=True)
class Manifests:
    """One namespace's manifests: the Secrets, a ConnectorAccount, a ClusterConnectorAccount that
    selects the namespace, and `n` Close.io ConnectorInstances. `modes` says which account the
    objects use, round robin: `own` (credentialsSecretRef), `namespaced` or `cluster`."""

    namespace: str
    cluster_account: str
    n: int
    modes: tuple[str, ...] = ("own", "namespaced", "cluster")

    def names(self) -> list[str]:
        return [f"ci-{i:03d}" for i in range(self.n)]

    def mode(self, name: str) -> str:
        return self.modes[int(name.removeprefix("ci-")) % len(self.modes)]

    def body(self, name: str) -> dict[str, Any]:
        mode = self.mode(name)
        if mode == "own":
            spec = closeio_spec()
        else:
            ref = (
                {"kind": "ConnectorAccount", "name": NAMESPACED_ACCOUNT}
                if mode == "namespaced"
                else {"kind": "ClusterConnectorAccount", "name": self.cluster_account}
            )
            spec = {k: v for k, v in closeio_spec(accountRef=ref).items() if k != "credentialsSecretRef"}
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name},
            "spec": spec,
        }

    def apply(self, api: client.ApiClient, simulator: SimulatorHandle, *, objects_only: bool = False) -> None:
        """Everything (or only the ConnectorInstances), created in parallel where it can be."""
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        if not objects_only:
            try:
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace)))
            except ApiException as error:
                if error.status != 409:  # the first apply: the `namespace` fixture made it
                    raise
            put_secret(core, self.namespace, ACCOUNT, account_values(simulator))
            put_secret(core, self.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                ACCOUNTS,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ConnectorAccount",
                    "metadata": {"name": NAMESPACED_ACCOUNT},
                    "spec": {"credentialsSecretRef": {"name": ACCOUNT}},
                },
            )
            custom.create_cluster_custom_object(
                GROUP,
                VERSION,
                CLUSTER_ACCOUNTS,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ClusterConnectorAccount",
                    "metadata": {"name": self.cluster_account},
                    "spec": {
                        "credentialsSecretRef": {"name": ACCOUNT, "namespace": self.namespace},
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
                    },
                },
            )

        def create(name: str) -> None:
            custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.body(name))

        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(create, self.names()))


@dataclass(frozen=True)
class Seen:
    """One object as it stands Ready: its UID, instance ID and the token its Secret holds."""

    uid: str
    instance_id: int
    token: str | None


def ready_objects(api: client.ApiClient, manifests: Manifests) -> dict[str, Seen] | None:
    """Every object of the manifests Ready with an instance ID, or None (one LIST of each kind)."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    items = custom.list_namespaced_custom_object(GROUP, VERSION, manifests.namespace, PLURAL)["items"]
    ready = {item["metadata"]["name"]: item for item in items if _ready(item)}
    if set(ready) != set(manifests.names()):
        return None
    tokens = {
        secret.metadata.name: base64.b64decode(secret.data["token"]).decode()
        for secret in core.list_namespaced_secret(manifests.namespace).items
        if secret.data and "token" in secret.data
    }
    return {
        name: Seen(item["metadata"]["uid"], item["status"]["instanceID"], tokens.get(f"{name}-token"))
        for name, item in ready.items()
    }


def _ready(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready and bool(status.get("instanceID"))


def wait_all_ready(api: client.ApiClient, manifests: Manifests) -> dict[str, Seen]:
    def count() -> str:
        items = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, manifests.namespace, PLURAL
        )["items"]
        return f"{sum(map(_ready, items))} of {manifests.n} Ready"

    try:
        seen: dict[str, Seen] = wait_until(
            lambda: ready_objects(api, manifests), READY_TIMEOUT, f"{manifests.n} objects Ready"
        )
    except pytest.fail.Exception:
        pytest.fail(f"not all Ready within {READY_TIMEOUT:.0f}s: {count()}")
    return seen


# -- what the platform saw -----------------------------------------------------------------------------


def calls(simulator: SimulatorHandle, method: str, route: str) -> int:
    return sum(1 for r in simulator.control.requests() if (r["method"], r["route"]) == (method, route))


def posts(simulator: SimulatorHandle) -> int:
    return calls(simulator, "POST", "/instances")


def puts(simulator: SimulatorHandle) -> int:
    return calls(simulator, "PUT", "/instances/{id}")


def remote_instances(simulator: SimulatorHandle) -> dict[int, dict[str, Any]]:
    return {instance["id"]: instance for instance in simulator.control.instances()}


def events(api: client.ApiClient, reason: str, namespace: str | None = None) -> list[client.CoreV1Event]:
    core = client.CoreV1Api(api)
    selector = f"reason={reason}"
    if namespace is None:
        return list(core.list_event_for_all_namespaces(field_selector=selector).items)
    return list(core.list_namespaced_event(namespace, field_selector=selector).items)


def account_status(api: client.ApiClient, kind: str, manifests: Manifests) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    if kind == "ClusterConnectorAccount":
        obj = custom.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNTS, manifests.cluster_account)
    else:
        obj = custom.get_namespaced_custom_object(
            GROUP, VERSION, manifests.namespace, ACCOUNTS, NAMESPACED_ACCOUNT
        )
    status: dict[str, Any] = obj.get("status") or {}
    return status


def assert_reclaimed(
    api: client.ApiClient, simulator: SimulatorHandle, before: dict[str, Seen], after: dict[str, Seen]
) -> None:
    """The same instances, one PUT each and no POST, their tokens kept, each object's marks on them."""
    n, created = len(before), posts(simulator)
    assert created == 0, f"{created} POSTs after the rebuild: instances created, not reclaimed"
    assert {name: seen.instance_id for name, seen in after.items()} == {
        name: seen.instance_id for name, seen in before.items()
    }, "an object's instance ID changed"
    assert all(after[name].uid != before[name].uid for name in before), "the objects were not made anew"
    lost = sorted(name for name in before if after[name].token != before[name].token)
    assert lost == [], f"{len(lost)} token Secrets changed their token, e.g. {lost[:5]}"
    remote = remote_instances(simulator)
    assert sorted(remote) == sorted(seen.instance_id for seen in after.values()), (
        "instances on the platform without an object"
    )
    for name, seen in after.items():
        tags = remote[seen.instance_id].get("tags") or []
        assert f"{UID_TAG}{seen.uid}" in tags, f"{name}: its new UID tag is missing: {tags}"
        assert f"{UID_TAG}{before[name].uid}" not in tags, f"{name}: the old UID tag stayed: {tags}"
        assert any(t.startswith(f"{CLAIM_TAG}{CLUSTER}/") and t.endswith(f"/{name}") for t in tags), tags
    assert puts(simulator) == n, f"{puts(simulator)} PUTs for {n} reclaims (one each)"
    assert calls(simulator, "DELETE", "/instances/{id}") == 0


def wait_reclaimed_events(api: client.ApiClient, namespace: str, names: list[str]) -> None:
    def reclaimed() -> bool:
        return {e.involved_object.name for e in events(api, "Reclaimed", namespace)} == set(names)

    wait_until(reclaimed, 15, f"an Event Reclaimed for each of the {len(names)} objects")


# -- the tests ---------------------------------------------------------------------------------------------


@pytest.fixture
def manifests_for(namespace: str) -> Callable[..., Manifests]:
    """Manifests in the test's namespace, with a cluster account of a unique name (the session's
    autouse fixture deletes the cluster accounts a test leaves)."""
    return lambda n, **kw: Manifests(namespace, f"rebuild-{uuid.uuid4().hex[:8]}", n, **kw)


@pytest.mark.manual_operator
@pytest.mark.slow
def test_a_cluster_rebuilt_from_git_reclaims_every_instance(
    env: Env,
    control_plane: cluster.ControlPlane,
    api_client: client.ApiClient,
    manifests_for: Callable[..., Manifests],
) -> None:
    """200 objects over the three kinds of account; the cluster wiped and the same manifests
    applied again: all Ready with their old instances and tokens, and not one POST."""
    manifests = manifests_for(200)
    operator = env.start_operator(CLUSTER_FLAG)
    manifests.apply(api_client, env.simulator)
    before = wait_all_ready(api_client, manifests)
    assert posts(env.simulator) == manifests.n
    assert all(seen.token for seen in before.values())
    operator.stop()

    env.simulator.control.reset_counters()  # the request log from here on: after the rebuild
    rebuild_cluster(control_plane, api_client)
    assert manifests.namespace not in {ns.metadata.name for ns in env.core.list_namespace().items}
    manifests.apply(api_client, env.simulator)
    env.start_operator(CLUSTER_FLAG)
    after = wait_all_ready(api_client, manifests)

    assert_reclaimed(api_client, env.simulator, before, after)
    wait_reclaimed_events(api_client, manifests.namespace, manifests.names())
    for kind in ("ConnectorAccount", "ClusterConnectorAccount"):
        # The old instances carry live objects' claims: none is a stray.
        assert account_status(api_client, kind, manifests).get("strayInstances", 0) == 0


@pytest.mark.manual_operator
def test_a_velero_style_restore_reclaims_every_instance(
    env: Env, api_client: client.ApiClient, manifests_for: Callable[..., Manifests]
) -> None:
    """Same cluster, no wipe: with the operator stopped, the objects are deleted past their
    finalizer (nothing deleted remotely) and made again from the same manifests."""
    manifests = manifests_for(20)
    operator = env.start_operator(CLUSTER_FLAG)
    manifests.apply(api_client, env.simulator)
    before = wait_all_ready(api_client, manifests)
    operator.stop()

    env.simulator.control.reset_counters()
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)

    def drop(name: str) -> None:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, manifests.namespace, PLURAL, name, {"metadata": {"finalizers": None}}
        )
        custom.delete_namespaced_custom_object(GROUP, VERSION, manifests.namespace, PLURAL, name)
        # No garbage collector runs here: the token Secret goes as it would with its owner.
        core.delete_namespaced_secret(f"{name}-token", manifests.namespace)

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(drop, manifests.names()))
    assert custom.list_namespaced_custom_object(GROUP, VERSION, manifests.namespace, PLURAL)["items"] == []
    manifests.apply(api_client, env.simulator, objects_only=True)
    env.start_operator(CLUSTER_FLAG)
    after = wait_all_ready(api_client, manifests)

    assert_reclaimed(api_client, env.simulator, before, after)
    wait_reclaimed_events(api_client, manifests.namespace, manifests.names())


STRAY_ID = re.compile(r"\b(\d+)\b")


@pytest.mark.manual_operator
@pytest.mark.parametrize("kind", ["ConnectorAccount", "ClusterConnectorAccount"])
def test_without_a_cluster_name_a_rebuild_duplicates_and_the_account_reports_the_strays(
    env: Env,
    control_plane: cluster.ControlPlane,
    api_client: client.ApiClient,
    manifests_for: Callable[..., Manifests],
    kind: str,
) -> None:
    """The README's warning, shown: a POST per object, the old instances left in place (never
    deleted) and reported on the account. All objects use one account: accounts on the same
    platform account share one listing, so two would each see every stray."""
    manifests = manifests_for(10, modes=("namespaced" if kind == "ConnectorAccount" else "cluster",))
    operator = env.start_operator()
    manifests.apply(api_client, env.simulator)
    before = wait_all_ready(api_client, manifests)
    old = sorted(seen.instance_id for seen in before.values())
    operator.stop()

    env.simulator.control.reset_counters()
    rebuild_cluster(control_plane, api_client)
    manifests.apply(api_client, env.simulator)
    env.start_operator()
    after = wait_all_ready(api_client, manifests)

    assert posts(env.simulator) == manifests.n
    new = sorted(seen.instance_id for seen in after.values())
    assert set(new).isdisjoint(old)
    assert sorted(remote_instances(env.simulator)) == sorted(old + new), "the old instances stay"
    assert calls(env.simulator, "DELETE", "/instances/{id}") == 0

    def strays() -> dict[str, Any] | None:
        status = account_status(api_client, kind, manifests)
        return status if status.get("strayInstances") == len(old) else None

    status = wait_until(strays, 15, f"{kind} status.strayInstances == {len(old)}")
    assert sorted(status["strayInstanceIDs"]) == old

    def warnings() -> list[client.CoreV1Event]:
        name = NAMESPACED_ACCOUNT if kind == "ConnectorAccount" else manifests.cluster_account
        found = [
            e
            for e in events(api_client, "StrayInstance")
            if (e.involved_object.kind, e.involved_object.name, e.type) == (kind, name, "Warning")
        ]
        return found if len(found) >= len(old) else []

    reported = wait_until(warnings, 15, f"a Warning Event StrayInstance on the {kind} per stray")
    ids = sorted(int(next(m for m in STRAY_ID.findall(e.message) if int(m) in old)) for e in reported)
    assert ids == old, "one Event per stray, each naming its instance"
