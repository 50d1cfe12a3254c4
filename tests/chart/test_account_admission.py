"""The secret-references policy for accounts (issue 10) on the real API server.

An account is a Secret reference like any other: creating a ConnectorAccount, or changing its
spec, needs `get` on its credentials Secret, and a ClusterConnectorAccount needs it in the
namespace it names. An instance's `accountRef` to a ConnectorAccount needs `get` on that account
(the account's Secret is then used on the author's behalf); a ClusterConnectorAccount is the
platform team's to share, and its namespaceSelector decides, so referencing one needs nothing.
Each attack runs with the policies (refused) and without them (accepted by RBAC alone). The
per-object CEL budget still fits an accountRef beside the most Secrets checked one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from connector_operator.api.names import (
    ACCOUNT_KIND,
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_KIND,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    VERSION,
)
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import DELETE_SECRETS, MANAGE_INSTANCES, Release, grant, impersonating, refusal
from tests.chart.test_admission import MAX_CHECKED, User, may_get_secrets, put_secret
from tests.fixtures.operator import wait_until

POLICIES = pytest.mark.parametrize("policies", [True, False], ids=["policies", "without-policies"])
MANAGE_ACCOUNTS = {"apiGroups": [GROUP], "resources": [ACCOUNT_PLURAL], "verbs": ["*"]}


def may_get_accounts(names: list[str]) -> dict[str, Any]:
    return {"apiGroups": [GROUP], "resources": [ACCOUNT_PLURAL], "verbs": ["get"], "resourceNames": names}


def account(kind: str, name: str, secret: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"credentialsSecretRef": secret},
    }


def wait_allowed(
    api: client.ApiClient,
    verb: str,
    group: str,
    resource: str,
    name: str,
    namespace: str = "",
    subresource: str = "",
) -> None:
    """RBAC reaches the authorizer through an informer: wait until it grants what a test set up."""
    attributes = {
        "namespace": namespace, "verb": verb, "group": group, "resource": resource, "name": name,
        "subresource": subresource,
    }  # fmt: skip
    authz = client.AuthorizationV1Api(api)
    wait_until(
        lambda: (
            authz.create_self_subject_access_review(
                {"spec": {"resourceAttributes": attributes}}
            ).status.allowed
        ),
        what=f"RBAC to allow {verb} {resource}{'/' + subresource if subresource else ''} {name}",
    )


def grant_cluster(rbac: client.RbacAuthorizationV1Api, user: str, rules: list[dict[str, Any]]) -> None:
    """A ClusterRole with `rules`, bound cluster-wide to `user` (a platform engineer)."""
    name = f"{user}-{ACCOUNT_PLURAL}"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


@POLICIES
def test_a_connector_account_may_name_only_a_secret_its_author_can_get(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    namespace = install_chart(policies=policies).watched[0]
    put_secret(core, namespace, "team-lead-account", string_data={"userSecret": "u"})
    bob = impersonating(control_plane, "bob")
    grant(rbac, namespace, "bob", [MANAGE_ACCOUNTS])
    wait_allowed(bob, "create", GROUP, ACCOUNT_PLURAL, "", namespace)
    custom = client.CustomObjectsApi(bob)
    body = account(ACCOUNT_KIND, "borrowed", {"name": "team-lead-account"})

    refused = refusal(
        lambda: custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, ACCOUNT_PLURAL, body, dry_run="All"
        )
    )

    if not policies:
        assert refused is None, "RBAC alone let him name a Secret he cannot read"
        return
    assert "ConnectorAccount borrowed references Secret team-lead-account, which bob may not get" in str(
        refused
    )
    grant(rbac, namespace, "bob", [may_get_secrets(["team-lead-account"])])
    wait_allowed(bob, "get", "", "secrets", "team-lead-account", namespace)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, ACCOUNT_PLURAL, body)
    assert created["metadata"]["name"] == "borrowed"


@POLICIES
def test_a_cluster_account_may_name_only_a_secret_its_author_can_get_in_that_namespace(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    release = install_chart(policies=policies)
    put_secret(core, release.namespace, "oc-platform", string_data={"userSecret": "u"})
    # She may manage cluster accounts, but not read the operator namespace's Secrets.
    user = f"carol-{release.namespace}"
    carol = impersonating(control_plane, user)
    grant_cluster(rbac, user, [{"apiGroups": [GROUP], "resources": [CLUSTER_ACCOUNT_PLURAL], "verbs": ["*"]}])
    wait_allowed(carol, "create", GROUP, CLUSTER_ACCOUNT_PLURAL, "")
    custom = client.CustomObjectsApi(carol)
    name = f"shared-{release.namespace}"
    body = account(CLUSTER_ACCOUNT_KIND, name, {"name": "oc-platform", "namespace": release.namespace})

    refused = refusal(
        lambda: custom.create_cluster_custom_object(
            GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, body, dry_run="All"
        )
    )

    if not policies:
        assert refused is None, "RBAC alone let her name a Secret she cannot read"
        return
    secret = f"{release.namespace}/oc-platform"
    assert f"ClusterConnectorAccount {name} references Secret {secret}, which {user} may not get" in str(
        refused
    )
    grant(rbac, release.namespace, user, [may_get_secrets(["oc-platform"])])
    wait_allowed(carol, "get", "", "secrets", "oc-platform", release.namespace)
    assert (
        custom.create_cluster_custom_object(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, body)["metadata"]["name"]
        == name
    )


@POLICIES
def test_an_instance_may_use_a_connector_account_only_if_its_author_can_get_it(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    namespace = install_chart(policies=policies).watched[0]
    admin = client.CustomObjectsApi(api_client)
    for name in ("team", "finance"):
        admin.create_namespaced_custom_object(
            GROUP, VERSION, namespace, ACCOUNT_PLURAL, account(ACCOUNT_KIND, name, {"name": f"{name}-secret"})
        )
    alice = User(control_plane, "alice", namespace)
    grant(rbac, namespace, "alice", [MANAGE_INSTANCES, may_get_accounts(["team"])])
    wait_allowed(alice.api, "get", GROUP, ACCOUNT_PLURAL, "team", namespace)

    def using(kind: str, name: str) -> dict[str, Any]:
        return {"connectorKey": "closeio", "accountRef": {"kind": kind, "name": name}}

    refused = refusal(lambda: alice.create("crm", using(ACCOUNT_KIND, "finance"), dry_run="All"))

    if not policies:
        assert refused is None, "RBAC alone let her use an account she cannot read"
        return
    assert "ConnectorInstance crm uses ConnectorAccount finance, which alice may not get" in str(refused)
    assert refusal(lambda: alice.create("crm", using(ACCOUNT_KIND, "team"), dry_run="All")) is None
    # A cluster account is shared by its namespaceSelector, not by RBAC on it.
    assert refusal(lambda: alice.create("crm", using(CLUSTER_ACCOUNT_KIND, "shared"), dry_run="All")) is None
    # Switching accounts is a spec change: checked again.
    alice.create("crm", using(ACCOUNT_KIND, "team"))
    switch = {"spec": {"accountRef": {"kind": ACCOUNT_KIND, "name": "finance"}}}
    assert "uses ConnectorAccount finance" in str(refusal(lambda: alice.patch("crm", switch, dry_run="All")))


def test_an_account_reference_fits_the_budget_beside_the_most_secrets_checked_by_name(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    """Each authorization check costs a fixed share of the API server's CEL budget per evaluation:
    the accountRef check comes on top of the MAX_CHECKED Secret checks and must still fit."""
    namespace = install_chart().watched[0]
    names = [f"s{i}" for i in range(MAX_CHECKED)]
    dave = User(control_plane, "dave", namespace)
    rules = [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(names), may_get_accounts(["team"])]
    grant(rbac, namespace, dave.name, rules)
    wait_allowed(dave.api, "get", "", "secrets", names[-1], namespace)
    wait_allowed(dave.api, "get", GROUP, ACCOUNT_PLURAL, "team", namespace)

    def spec(secrets: list[str]) -> dict[str, Any]:
        return {
            "connectorKey": "closeio",
            "accountRef": {"kind": ACCOUNT_KIND, "name": "team"},
            "configuration": [
                {"key": f"key{i}", "valueFrom": {"secretKeyRef": {"name": name, "key": "v"}}}
                for i, name in enumerate(secrets)
            ],
        }

    # 200 entries (the CRD's maximum) over MAX_CHECKED distinct Secrets.
    at_limit = [names[i % MAX_CHECKED] for i in range(200)]
    assert refusal(lambda: dave.create("at-limit", spec(at_limit), dry_run="All")) is None
    # The last check still runs: the last distinct Secret, one he cannot read, is refused.
    last_unreadable = [names[i % (MAX_CHECKED - 1)] for i in range(199)] + ["nope"]
    refused = refusal(lambda: dave.create("one-unreadable", spec(last_unreadable), dry_run="All"))
    assert "references Secret nope, which dave may not get" in str(refused)
