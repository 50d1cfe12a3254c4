"""The chart's RBAC for accounts (issue 10), rendered and on the real API server.

The operator's ServiceAccount reads ConnectorAccounts (in the watched namespaces) and
ClusterConnectorAccounts, writes their status and its finalizer on them, and nothing else of
them: RBAC grants `patch` for the finalizer, and the account-writes policy keeps that patch off the
spec (without the policy RBAC alone would let it through, which the test shows). It reads the
labels of the watched namespaces only (a cluster account's namespaceSelector). It reads Secrets in
the release namespace and in `operator.accountSecretsNamespaces` (cluster accounts' credentials)
and, in a namespaced install, nowhere else beyond the watched namespaces. The chart README's
command releases an account an uninstall left behind on the operator's finalizer.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import (
    ACCOUNT_KIND,
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_KIND,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    VERSION,
    WATCH_LABEL,
)
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import Release, fresh_namespace, refusal, service_account_client
from tests.chart.support import deployment_env, render
from tests.chart.test_install import readme_release_commands
from tests.fixtures.operator import wait_until

FULLNAME = "oco-open-connectors-operator"
POLICIES = pytest.mark.parametrize("policies", [True, False], ids=["policies", "without-policies"])


# --- rendered ------------------------------------------------------------------------------------


def roles(objects: list[dict[str, Any]], name: str) -> dict[str | None, list[dict[str, Any]]]:
    return {
        o["metadata"].get("namespace"): o["rules"]
        for o in objects
        if o["kind"] in ("Role", "ClusterRole") and o["metadata"]["name"] == name
    }


def test_namespaced_install_reads_account_secrets_in_its_namespace_and_the_listed_ones_only() -> None:
    args = (
        "--set",
        "operator.watchNamespaces={sales}",
        "--set",
        "operator.accountSecretsNamespaces={platform,sales}",
    )
    objects = render(*args)
    secret_reads = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "patch"]}]
    # sales is watched: its Role already reads Secrets there, so no second one.
    assert roles(objects, f"{FULLNAME}-account-secrets") == {"oco": secret_reads, "platform": secret_reads}
    bindings = {
        o["metadata"]["namespace"]: o["subjects"]
        for o in objects
        if o["kind"] == "RoleBinding" and o["metadata"]["name"] == f"{FULLNAME}-account-secrets"
    }
    assert set(bindings) == {"oco", "platform"}
    assert {s["name"] for subjects in bindings.values() for s in subjects} == {FULLNAME}
    [cluster_rules] = roles(objects, f"{FULLNAME}-cluster-accounts").values()
    assert cluster_rules == [
        {
            "apiGroups": [GROUP],
            "resources": [CLUSTER_ACCOUNT_PLURAL],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": [GROUP], "resources": [f"{CLUSTER_ACCOUNT_PLURAL}/status"], "verbs": ["patch"]},
        # Namespaces by name: the watched ones' labels, no other namespace.
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "resourceNames": ["sales"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    # No other cluster-wide rule for the operator in a namespaced install but its one peering object
    # (test_render.py: test_peering_rbac_environment_and_grace_period); the other ClusterRoles are
    # the tenants' (aggregated into admin, edit and view), bound to nobody here.
    assert {o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"} == {
        f"{FULLNAME}-cluster-accounts", f"{FULLNAME}-peering"
    }  # fmt: skip
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"} == {
        f"{FULLNAME}-cluster-accounts", f"{FULLNAME}-peering", f"{FULLNAME}-edit", f"{FULLNAME}-view"
    }  # fmt: skip
    env = deployment_env(*args, "--set", "operator.defaultAccount=shared")
    assert env["OCO_DEFAULT_ACCOUNT"] == "shared"
    assert env["OCO_ACCOUNT_SECRETS_NAMESPACES"] == "oco,platform,sales"


def test_the_release_namespace_counts_once_and_a_cluster_wide_install_needs_no_extra_role() -> None:
    assert (
        set(roles(render("--set", "operator.watchNamespaces={oco}"), f"{FULLNAME}-account-secrets")) == set()
    )
    listed = render(
        "--set", "operator.watchNamespaces={sales}", "--set", "operator.accountSecretsNamespaces={oco}"
    )
    assert set(roles(listed, f"{FULLNAME}-account-secrets")) == {"oco"}
    cluster_wide = render("--set", "operator.accountSecretsNamespaces={platform}")
    assert roles(cluster_wide, f"{FULLNAME}-account-secrets") == {}
    assert deployment_env("--set", "operator.accountSecretsNamespaces={platform,oco}")[
        "OCO_ACCOUNT_SECRETS_NAMESPACES"
    ] == "oco,platform"  # fmt: skip


# --- on the API server ---------------------------------------------------------------------------


def status_of(call: Callable[[], Any]) -> int:
    """200 when `call` succeeds, else the API server's status code."""
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 200


def account(kind: str, name: str, secret: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "credentialsSecretRef": secret,
            "requestBudget": {"requestsPerSecond": 5, "burst": 5, "maxInFlight": 2},
        },
    }


def secret(name: str) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"userSecret": "u"})


@pytest.fixture
def platform(core: client.CoreV1Api) -> str:
    """A namespace for cluster accounts' Secrets, named in operator.accountSecretsNamespaces."""
    return fresh_namespace(core, "platform")


def test_the_operator_reads_secrets_where_accounts_keep_them_and_nowhere_else(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    platform: str,
    tmp_path: Path,
) -> None:
    release = install_chart("--set", f"operator.accountSecretsNamespaces={{{platform}}}", namespaced=True)
    elsewhere = fresh_namespace(core, "elsewhere")
    for namespace in (release.namespace, platform, elsewhere):
        core.create_namespaced_secret(namespace, secret("oc-account"))
    sa = service_account_client(control_plane, core, release, tmp_path)
    sa_core = client.CoreV1Api(sa)
    for namespace in (release.namespace, platform):
        assert sa_core.read_namespaced_secret("oc-account", namespace).metadata.name == "oc-account"
        assert sa_core.list_namespaced_secret(namespace, label_selector=WATCH_LABEL).items == []
        # The watch label (and the in-use finalizer) go on an account's Secret as on any input.
        labelled = sa_core.patch_namespaced_secret(
            "oc-account", namespace, {"metadata": {"labels": {WATCH_LABEL: "input"}}}
        )
        assert labelled.metadata.labels == {WATCH_LABEL: "input"}
    assert status_of(lambda: sa_core.read_namespaced_secret("oc-account", elsewhere)) == 403
    assert status_of(lambda: sa_core.list_namespaced_secret(elsewhere)) == 403
    assert status_of(lambda: sa_core.list_secret_for_all_namespaces()) == 403
    # Reading is not writing: no Secret of the platform team's namespace is the operator's to delete.
    assert status_of(lambda: sa_core.delete_namespaced_secret("oc-account", platform)) == 403
    # Namespaces: the watched ones' labels only, by name.
    watched = release.watched[0]
    assert sa_core.read_namespace(watched).metadata.name == watched
    by_name = sa_core.list_namespace(field_selector=f"metadata.name={watched}")
    assert [n.metadata.name for n in by_name.items] == [watched]
    assert status_of(lambda: sa_core.read_namespace(elsewhere)) == 403
    assert status_of(lambda: sa_core.list_namespace()) == 403


@POLICIES
def test_the_operator_reads_accounts_writes_status_and_finalizer_but_never_the_spec(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    tmp_path: Path,
    policies: bool,
) -> None:
    release = install_chart(namespaced=True, policies=policies)
    watched = release.watched[0]
    admin = client.CustomObjectsApi(api_client)
    cluster_name = f"shared-{watched}"
    admin.create_cluster_custom_object(
        GROUP,
        VERSION,
        CLUSTER_ACCOUNT_PLURAL,
        account(CLUSTER_ACCOUNT_KIND, cluster_name, {"name": "oc-account", "namespace": release.namespace}),
    )
    admin.create_namespaced_custom_object(
        GROUP, VERSION, watched, ACCOUNT_PLURAL, account(ACCOUNT_KIND, "team", {"name": "oc-account"})
    )
    sa = client.CustomObjectsApi(service_account_client(control_plane, core, release, tmp_path))
    other = fresh_namespace(core, "other")

    # Read.
    assert sa.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, cluster_name)["spec"]
    assert sa.list_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL)["items"]
    assert sa.get_namespaced_custom_object(GROUP, VERSION, watched, ACCOUNT_PLURAL, "team")["spec"]
    assert status_of(lambda: sa.list_namespaced_custom_object(GROUP, VERSION, other, ACCOUNT_PLURAL)) == 403
    assert status_of(lambda: sa.list_cluster_custom_object(GROUP, VERSION, ACCOUNT_PLURAL)) == 403
    # Status, through the subresource.
    ready = {"status": {"observedGeneration": 1, "instances": 3}}
    assert sa.patch_cluster_custom_object_status(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, cluster_name, ready)[
        "status"
    ]["instances"] == 3  # fmt: skip
    assert sa.patch_namespaced_custom_object_status(GROUP, VERSION, watched, ACCOUNT_PLURAL, "team", ready)[
        "status"
    ]["instances"] == 3  # fmt: skip
    # Its finalizer on the object, on and off.
    hold = {"metadata": {"finalizers": ["openconnectors.io/finalizer"]}}
    held = sa.patch_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, cluster_name, hold)
    assert held["metadata"]["finalizers"] == ["openconnectors.io/finalizer"]
    release_it = {"metadata": {"finalizers": None}}
    assert "finalizers" not in sa.patch_namespaced_custom_object(
        GROUP, VERSION, watched, ACCOUNT_PLURAL, "team", release_it
    )["metadata"]  # fmt: skip
    # Never created or deleted by the operator: RBAC alone says so.
    new = account(ACCOUNT_KIND, "minted", {"name": "oc-account"})
    assert (
        status_of(lambda: sa.create_namespaced_custom_object(GROUP, VERSION, watched, ACCOUNT_PLURAL, new))
        == 403
    )
    assert (
        status_of(lambda: sa.delete_namespaced_custom_object(GROUP, VERSION, watched, ACCOUNT_PLURAL, "team"))
        == 403
    )

    # The spec, labels, annotations, someone else's finalizer: RBAC lets `patch` through, the
    # account-writes policy does not.
    attacks = {
        "the cluster account's Secret": lambda: sa.patch_cluster_custom_object(
            GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, cluster_name,
            {"spec": {"credentialsSecretRef": {"name": "other", "namespace": release.namespace}}},
            dry_run="All",
        ),
        "the namespace selector": lambda: sa.patch_cluster_custom_object(
            GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, cluster_name,
            {"spec": {"namespaceSelector": {"matchLabels": {"a": "b"}}}}, dry_run="All",
        ),
        "a namespaced account's budget": lambda: sa.patch_namespaced_custom_object(
            GROUP, VERSION, watched, ACCOUNT_PLURAL, "team",
            {"spec": {"requestBudget": {"requestsPerSecond": 1000, "burst": 10000, "maxInFlight": 1000}}},
            dry_run="All",
        ),
        "a label": lambda: sa.patch_namespaced_custom_object(
            GROUP, VERSION, watched, ACCOUNT_PLURAL, "team",
            {"metadata": {"labels": {"a": "b"}}}, dry_run="All",
        ),
        "another finalizer": lambda: sa.patch_namespaced_custom_object(
            GROUP, VERSION, watched, ACCOUNT_PLURAL, "team",
            {"metadata": {"finalizers": ["example.com/keep"]}}, dry_run="All",
        ),
    }  # fmt: skip
    if policies:
        # The install waits for the policies it probes; this one has no probe of its own there
        # (it needs an account to refuse a write to), and is seen a moment later by some servers.
        wait_until(
            lambda: "AdmissionPolicy" in (refusal(attacks["a label"]) or ""),
            what="the account-writes policy enforced",
        )
    outcomes = {name: refusal(attack) for name, attack in attacks.items()}
    if policies:
        passed = {n for n, refused in outcomes.items() if not refused or "AdmissionPolicy" not in refused}
        assert passed == set()
        assert "may change only its own finalizers" in str(outcomes["the cluster account's Secret"])
    else:
        assert {n for n, refused in outcomes.items() if refused} == set(), "RBAC alone allows them all"


def test_a_user_s_spec_change_is_not_the_operator_s_to_judge(
    install_chart: Callable[..., Release], api_client: client.ApiClient
) -> None:
    """account-writes binds the operator's identity only: the platform team edits accounts freely."""
    release = install_chart(namespaced=True)
    watched = release.watched[0]
    admin = client.CustomObjectsApi(api_client)
    admin.create_namespaced_custom_object(
        GROUP, VERSION, watched, ACCOUNT_PLURAL, account(ACCOUNT_KIND, "team", {"name": "oc-account"})
    )
    patch = {"spec": {"requestBudget": {"requestsPerSecond": 2, "burst": 2, "maxInFlight": 1}}}
    changed = admin.patch_namespaced_custom_object(GROUP, VERSION, watched, ACCOUNT_PLURAL, "team", patch)
    assert changed["spec"]["requestBudget"]["requestsPerSecond"] == 2


def test_the_readme_command_releases_an_account_left_behind_by_an_uninstall(
    control_plane: ControlPlane, api_client: client.ApiClient
) -> None:
    admin = client.CustomObjectsApi(api_client)
    name = f"left-{uuid.uuid4().hex[:6]}"
    body = account(CLUSTER_ACCOUNT_KIND, name, {"name": "oc-account", "namespace": "default"})
    body["metadata"]["finalizers"] = ["openconnectors.io/finalizer"]  # as the operator left it
    admin.create_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, body)
    admin.delete_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, name)
    assert admin.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, name)["metadata"][
        "deletionTimestamp"
    ]  # fmt: skip
    command = readme_release_commands()[
        "an account (a ClusterConnectorAccount; for a ConnectorAccount: connectoraccount NAME -n NS)"
    ].replace("NAME", name)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        status_of(lambda: admin.get_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, name))
        == 404
    )
