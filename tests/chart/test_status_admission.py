"""Status belongs to the operator (issue 18) on the real API server.

The status-writes policy: the status subresource of ConnectorInstances, ConnectorAccounts and
ClusterConnectorAccounts is written by the operator's ServiceAccount and by the groups in
`admissionPolicies.statusWriters`, nobody else, whatever RBAC grants (a Role on `*` covers
`connectorinstances/status`). The forgery runs with the policies (refused) and without them
(accepted: RBAC alone lets it through), so the test shows that the policy is what stops it.

The aggregated ClusterRoles give admin and edit the kinds but never their status, and view only
reads. This control plane has no controller-manager, so nothing aggregates them into the default
roles: the test does what the aggregation controller would (it unions the rules of the roles
each default role's aggregationRule selects) and binds users to those copies.
"""

from __future__ import annotations

import functools
import uuid
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
    PLURAL,
    VERSION,
)
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import RELEASE, Release, grant, impersonating, instance_body, refusal
from tests.chart.support import can_i as allowed
from tests.chart.test_account_admission import account, grant_cluster, wait_allowed
from tests.chart.test_render import FULLNAME
from tests.fixtures.operator import wait_until

EVERYTHING = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
CLUSTER_ACCOUNT_STATUS = {
    "apiGroups": [GROUP], "resources": [f"{CLUSTER_ACCOUNT_PLURAL}/status"], "verbs": ["*"]
}  # fmt: skip
BREAK_GLASS = "oco-break-glass"


class StatusWriter:
    """One identity writing the status of one object of each kind."""

    def __init__(self, api: client.ApiClient, namespace: str, cluster_account: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.cluster_account = cluster_account

    def patches(self, value: int, dry_run: bool = False) -> dict[str, Callable[[], Any]]:
        """A merge patch of each object's /status, by kind: `value` as the instance's instanceID and
        as the accounts' instance count."""
        extra = {"dry_run": "All"} if dry_run else {}
        forged_instance = {"status": {"instanceID": value}}
        forged_account = {"status": {"instances": value}}
        return {
            "ConnectorInstance": lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, "crm", forged_instance, **extra
            ),
            ACCOUNT_KIND: lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, ACCOUNT_PLURAL, "team", forged_account, **extra
            ),
            CLUSTER_ACCOUNT_KIND: lambda: self.custom.patch_cluster_custom_object_status(
                GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, self.cluster_account, forged_account, **extra
            ),
        }


def objects_of_each_kind(api_client: client.ApiClient, release: Release) -> StatusWriter:
    """A ConnectorInstance and a ConnectorAccount in the watched namespace and a
    ClusterConnectorAccount, created by the admin (no operator runs: nothing else writes status)."""
    namespace = release.watched[0]
    admin = client.CustomObjectsApi(api_client)
    spec = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "team-account"}}
    admin.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, instance_body("crm", spec))
    admin.create_namespaced_custom_object(
        GROUP, VERSION, namespace, ACCOUNT_PLURAL, account(ACCOUNT_KIND, "team", {"name": "team-account"})
    )
    cluster_account = f"shared-{release.namespace}"
    secret = {"name": "platform-account", "namespace": release.namespace}
    admin.create_cluster_custom_object(
        GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, account(CLUSTER_ACCOUNT_KIND, cluster_account, secret)
    )
    return StatusWriter(api_client, namespace, cluster_account)


def statuses(api_client: client.ApiClient, objects: StatusWriter) -> dict[str, Any]:
    """Each object's status, by kind (None before anyone wrote one)."""
    admin = client.CustomObjectsApi(api_client)
    namespace = objects.namespace
    read = {
        "ConnectorInstance": admin.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "crm"),
        ACCOUNT_KIND: admin.get_namespaced_custom_object(GROUP, VERSION, namespace, ACCOUNT_PLURAL, "team"),
        CLUSTER_ACCOUNT_KIND: admin.get_cluster_custom_object(
            GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL, objects.cluster_account
        ),
    }
    return {kind: o.get("status") for kind, o in read.items()}


def written(before: dict[str, Any], value: int) -> dict[str, Any]:
    """The statuses `before`, once StatusWriter.patches(value) went through."""
    fields = {"ConnectorInstance": "instanceID", ACCOUNT_KIND: "instances", CLUSTER_ACCOUNT_KIND: "instances"}
    return {kind: {**(before[kind] or {}), field: value} for kind, field in fields.items()}


def tenant_with_every_permission(
    control_plane: ControlPlane, rbac: client.RbacAuthorizationV1Api, objects: StatusWriter, user: str,
    group: str | None = None,
) -> StatusWriter:  # fmt: skip
    """`user` with a Role on `*` in the namespace and a ClusterRole on clusterconnectoraccounts/status:
    RBAC lets her write every status; only the policy stands in the way."""
    grant(rbac, objects.namespace, user, [EVERYTHING])
    grant_cluster(rbac, user, [CLUSTER_ACCOUNT_STATUS])
    api = impersonating(control_plane, user, group)
    for plural in (PLURAL, ACCOUNT_PLURAL):
        wait_allowed(api, "patch", GROUP, plural, "", objects.namespace, subresource="status")
    wait_allowed(api, "patch", GROUP, CLUSTER_ACCOUNT_PLURAL, "", subresource="status")
    return StatusWriter(api, objects.namespace, objects.cluster_account)


def refusals(writer: StatusWriter, value: int, dry_run: bool = False) -> dict[str, str | None]:
    """Each kind's refusal of writer.patches(value): None where the write went through."""
    return {kind: refusal(patch) for kind, patch in writer.patches(value, dry_run).items()}


NONE_REFUSED = dict.fromkeys(("ConnectorInstance", ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND))


def expected_refusal(kind: str, name: str, user: str, allowed: str) -> str:
    return (
        f"the status of {kind} {name} belongs to the operator: {user} may not write it (only {allowed} may)"
    )


def wait_enforced(writer: StatusWriter, release: Release, allowed: str) -> None:
    """The policy reaches the admission plugin through an informer: wait until it refuses, with this
    release's ServiceAccount in the message (an uninstalled release's policy had the same name)."""

    def enforced() -> bool:
        refused = str(refusal(writer.patches(4242, dry_run=True)["ConnectorInstance"]))
        return release.service_account_user in refused and allowed in refused

    wait_until(enforced, what="the status-writes policy enforced")


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


@pytest.mark.parametrize(
    ("namespaced", "policies"),
    [(True, True), (False, True), (True, False)],
    ids=["namespaced", "cluster-wide", "without-policies"],
)
def test_a_tenant_with_every_permission_cannot_forge_status(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    rbac: client.RbacAuthorizationV1Api,
    namespaced: bool,
    policies: bool,
) -> None:
    # The namespaced install binds the policy to the watched namespaces: the cluster-scoped
    # ClusterConnectorAccount is still covered (a namespaceSelector never skips one).
    release = install_chart(namespaced=namespaced, policies=policies)
    objects = objects_of_each_kind(api_client, release)
    user = f"mallory-{release.namespace}"
    mallory = tenant_with_every_permission(control_plane, rbac, objects, user)
    before = statuses(api_client, objects)  # the CRDs' defaults
    # A status in a write of the object itself is dropped by the API server (the CRDs' status
    # subresource): the policy need not look at the objects, only at /status.
    body = {"metadata": {"labels": {"owner": "mallory"}}, "status": {"instanceID": 4242}}
    mallory.custom.patch_namespaced_custom_object(GROUP, VERSION, objects.namespace, PLURAL, "crm", body)
    assert statuses(api_client, objects) == before

    if not policies:
        assert refusals(mallory, 4242) == NONE_REFUSED, "RBAC alone lets her forge status"
        assert statuses(api_client, objects) == written(before, 4242)
        return
    wait_enforced(mallory, release, release.service_account_user)
    names = {
        "ConnectorInstance": f"{objects.namespace}/crm",
        ACCOUNT_KIND: f"{objects.namespace}/team",
        CLUSTER_ACCOUNT_KIND: objects.cluster_account,
    }
    for kind, refused in refusals(mallory, 4242).items():
        assert refused is not None, f"{user} wrote the status of a {kind}"
        assert "ValidatingAdmissionPolicy" in refused
        assert expected_refusal(kind, names[kind], user, release.service_account_user) in refused
    assert statuses(api_client, objects) == before


def test_the_operator_and_the_status_writers_groups_may_write_status(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    release = install_chart("--set", f"admissionPolicies.statusWriters={{{BREAK_GLASS}}}")
    objects = objects_of_each_kind(api_client, release)
    before = statuses(api_client, objects)  # the CRDs' defaults
    allowed = f"{release.service_account_user} and members of {BREAK_GLASS}"
    # The same permissions twice: only erin is in the break-glass group.
    mallory, erin = (
        tenant_with_every_permission(control_plane, rbac, objects, f"{name}-{release.namespace}", group)
        for name, group in (("mallory", None), ("erin", BREAK_GLASS))
    )
    wait_enforced(mallory, release, allowed)
    assert all(refused and allowed in refused for refused in refusals(mallory, 4242).values())
    assert statuses(api_client, objects) == before

    # The pod's identity: impersonating the ServiceAccount's username gives the token's groups.
    operator_api = impersonating(control_plane, release.service_account_user)
    review = client.AuthenticationV1Api(operator_api).create_self_subject_review({})
    assert sorted(review.status.user_info.groups) == sorted(
        ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}", "system:authenticated"]
    )
    operator = StatusWriter(operator_api, objects.namespace, objects.cluster_account)
    assert refusals(operator, 1) == NONE_REFUSED, "the operator's ServiceAccount may write status"
    assert statuses(api_client, objects) == written(before, 1)

    assert refusals(erin, 2) == NONE_REFUSED, f"a member of {BREAK_GLASS} may write status"
    assert statuses(api_client, objects) == written(before, 2)


# --- the aggregated ClusterRoles ------------------------------------------------------------------

DEFAULT_ROLES = ("admin", "edit", "view")


def aggregated_rules(
    rbac: client.RbacAuthorizationV1Api, role: str, seen: frozenset[str] = frozenset()
) -> list[client.V1PolicyRule]:
    """What the aggregation controller puts into `role`: the rules of every ClusterRole its
    aggregationRule selects, themselves aggregated (admin selects edit, edit selects view)."""
    cluster_role = rbac.read_cluster_role(role)
    if cluster_role.aggregation_rule is None:
        return list(cluster_role.rules or [])
    rules: list[client.V1PolicyRule] = []
    for selector in cluster_role.aggregation_rule.cluster_role_selectors:
        labels = ",".join(f"{k}={v}" for k, v in (selector.match_labels or {}).items())
        for selected in rbac.list_cluster_role(label_selector=labels).items:
            if selected.metadata.name not in seen | {role}:
                rules += aggregated_rules(rbac, selected.metadata.name, seen | {role})
    return rules


def emulate_aggregation(rbac: client.RbacAuthorizationV1Api, role: str) -> str:
    """A copy of the default `role` as the controller-manager would aggregate it."""
    name = f"emulated-{role}-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role(client.V1ClusterRole(metadata=client.V1ObjectMeta(name=name),
                                                  rules=aggregated_rules(rbac, role)))  # fmt: skip
    return name


def bind(rbac: client.RbacAuthorizationV1Api, role: str, user: str, namespace: str | None) -> None:
    """`role` for `user`: in `namespace` (a RoleBinding, as teams get admin or edit), else cluster-wide."""
    body = {
        "metadata": {"name": f"{user}-{role}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    if namespace is None:
        rbac.create_cluster_role_binding(body)
    else:
        rbac.create_namespaced_role_binding(namespace, body)


def test_the_default_roles_get_the_kinds_but_never_status(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    # RBAC only: the policies are not what this test is about.
    release = install_chart(policies=False)
    namespace = release.watched[0]
    labelled = {
        role: {
            r.metadata.name
            for r in rbac.list_cluster_role(
                label_selector=f"rbac.authorization.k8s.io/aggregate-to-{role}=true,"
                f"app.kubernetes.io/instance={RELEASE}"
            ).items
        }
        for role in DEFAULT_ROLES
    }
    assert labelled == {
        "admin": {f"{FULLNAME}-edit"}, "edit": {f"{FULLNAME}-edit"}, "view": {f"{FULLNAME}-view"}
    }  # fmt: skip
    emulated = {role: emulate_aggregation(rbac, role) for role in DEFAULT_ROLES}
    users = {role: f"{role}-{release.namespace}" for role in DEFAULT_ROLES}
    for role in DEFAULT_ROLES:
        bind(rbac, emulated[role], users[role], namespace)
    # Bound cluster-wide, edit still gets no ClusterConnectorAccount write; view reads them.
    wide = {role: f"wide-{role}-{release.namespace}" for role in ("edit", "view")}
    for role, user in wide.items():
        bind(rbac, emulated[role], user, None)

    def can_i(user: str, verb: str, resource: str, *extra: str) -> bool:
        qualified = f"{resource}.{GROUP}" if "." not in resource else resource
        options = dict(zip(extra[::2], extra[1::2], strict=True))
        return allowed(
            control_plane.kubeconfig, user, verb, qualified, options.get("-n"), options.get("--subresource")
        )

    ns = ("-n", namespace)
    status = ("--subresource", "status")
    for user in (*users.values(), *wide.values()):  # RBAC reaches the authorizer through an informer
        wait_until(functools.partial(can_i, user, "list", PLURAL, *ns), what=f"RBAC for {user}")
    for role in ("admin", "edit"):
        user = users[role]
        for resource in (PLURAL, ACCOUNT_PLURAL):
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"):
                assert can_i(user, verb, resource, *ns), f"{role} may not {verb} {resource}"
            for verb in ("patch", "update"):
                assert not can_i(user, verb, resource, *ns, *status), f"{role} may {verb} {resource}/status"
        assert not can_i(user, "patch", "kopfpeerings.kopf.dev", *ns), f"{role} may patch kopfpeerings"
        assert not can_i(user, "create", "kopfpeerings.kopf.dev", *ns), f"{role} may create kopfpeerings"
    # The operator's peering object (a ClusterKopfPeering): not even edit bound cluster-wide writes it.
    assert not can_i(wide["edit"], "patch", "clusterkopfpeerings.kopf.dev"), "edit may patch it"
    view = users["view"]
    for resource in (PLURAL, ACCOUNT_PLURAL):
        assert can_i(view, "get", resource, *ns)
        assert can_i(view, "list", resource, *ns)
        for verb in ("create", "patch", "delete"):
            assert not can_i(view, verb, resource, *ns), f"view may {verb} {resource}"
        assert not can_i(view, "patch", resource, *ns, *status)
    assert can_i(wide["view"], "list", CLUSTER_ACCOUNT_PLURAL)
    assert not can_i(wide["view"], "create", CLUSTER_ACCOUNT_PLURAL)
    assert can_i(wide["edit"], "create", PLURAL, *ns)
    for verb in ("create", "patch", "delete"):
        assert not can_i(wide["edit"], verb, CLUSTER_ACCOUNT_PLURAL), f"edit may {verb} cluster accounts"
    assert not can_i(wide["edit"], "patch", CLUSTER_ACCOUNT_PLURAL, *status)
