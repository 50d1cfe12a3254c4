"""The chart's admission policies on the real API server (issue 9, findings 1 and 6).

secret-references: a ConnectorInstance may reference only Secrets its author may `get`; any spec
change re-checks them all. secret-writes: the operator's ServiceAccount writes only its own
Secrets, and on the Secrets it reads only its watch label and its in-use finalizer.

Authors here may delete Secrets (DELETE_SECRETS), so that the secret-holds policy
(test_secret_holds.py) never refuses what these tests show another policy refusing.

Every attack runs twice: with the policies (refused) and with `admissionPolicies.enabled=false`
(accepted: RBAC alone lets it through), so each test shows that the policy is what stops it.
The operator's identity is a real token of the chart's ServiceAccount; users are impersonated.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client

from connector_operator.api.names import (
    GROUP,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PLURAL,
    VERSION,
    WATCH_LABEL,
)
from connector_operator.kube.api import MERGE_PATCH, KubeAPI
from connector_operator.kube.secrets import Owner, Secrets, SecretShape
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import (
    DELETE_SECRETS,
    MANAGE_INSTANCES,
    Release,
    grant,
    impersonating,
    instance_body,
    refusal,
    service_account_client,
    service_account_token,
)
from tests.fixtures.operator import wait_until

POLICIES = pytest.mark.parametrize("policies", [True, False], ids=["policies", "without-policies"])
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
IN_USE = "openconnectors.io/in-use"  # the finalizer part D puts on the Secrets an object reads
OURS = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
# How many distinct Secrets the policy checks one by one (templates/admissionpolicies.yaml).
MAX_CHECKED = 24


def put_secret(core: client.CoreV1Api, namespace: str, name: str, **fields: Any) -> None:
    metadata = client.V1ObjectMeta(name=name, labels=fields.pop("labels", None))
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=metadata, **fields))


def spec_reading(account: str, *configuration_secrets: str) -> dict[str, Any]:
    return {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": account},
        "configuration": [
            {"key": f"key{i}", "valueFrom": {"secretKeyRef": {"name": name, "key": "value"}}}
            for i, name in enumerate(configuration_secrets)
        ],
    }


def may_get_secrets(names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    return rule if names is None else {**rule, "resourceNames": names}


def wait_allowed(api: client.ApiClient, namespace: str, verb: str, resource: str, name: str = "") -> None:
    """RBAC reaches the authorizer through an informer: wait until it grants what a test set up."""
    group = GROUP if resource == PLURAL else ""
    review = {
        "spec": {
            "resourceAttributes": {
                "namespace": namespace, "verb": verb, "group": group, "resource": resource, "name": name,
            }
        }
    }  # fmt: skip
    authz = client.AuthorizationV1Api(api)
    wait_until(
        lambda: authz.create_self_subject_access_review(review).status.allowed,
        what=f"RBAC to allow {verb} {resource} {name}",
    )


class User:
    """An impersonated user acting on ConnectorInstances in one namespace."""

    def __init__(self, control_plane: ControlPlane, name: str, namespace: str) -> None:
        self.name = name
        self.api = impersonating(control_plane, name)
        self.custom = client.CustomObjectsApi(self.api)
        self.namespace = namespace

    def create(self, name: str, spec: dict[str, Any], dry_run: str | None = None) -> Any:
        body = instance_body(name, spec)
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body, **({"dry_run": dry_run} if dry_run else {})
        )

    def patch(self, name: str, patch: dict[str, Any], dry_run: str | None = None) -> Any:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch, **({"dry_run": dry_run} if dry_run else {})
        )


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


# --- secret-references: nobody gets a Secret through the operator they could not read ---------


@POLICIES
@pytest.mark.parametrize("where", ["credentialsSecretRef", "configuration"])
def test_an_author_may_reference_only_secrets_she_can_get(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
    where: str,
) -> None:
    namespace = install_chart(policies=policies).watched[0]
    for name in ("her-account", "database-password"):
        put_secret(core, namespace, name, string_data={"value": f"{name}-value"})
    alice = User(control_plane, "alice", namespace)
    grant(rbac, namespace, "alice", [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(["her-account"])])
    wait_allowed(alice.api, namespace, "get", "secrets", "her-account")
    spec = (
        spec_reading("database-password")
        if where == "credentialsSecretRef"
        else spec_reading("her-account", "database-password")
    )

    refused = refusal(lambda: alice.create("exfiltrate", spec, dry_run="All"))

    if not policies:
        assert refused is None, "RBAC alone let her reference a Secret she cannot read"
        return
    assert refused is not None
    assert "references Secret database-password, which alice may not get" in refused
    grant(rbac, namespace, "alice", [may_get_secrets(["database-password"])])
    wait_allowed(alice.api, namespace, "get", "secrets", "database-password")
    assert alice.create("allowed", spec)["metadata"]["name"] == "allowed"


@POLICIES
def test_only_an_author_who_may_create_secrets_may_shape_the_token_secret(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    # Issue 11: labels and annotations other controllers act on (a Grafana sidecar, Reflector),
    # templated data: a shaped token Secret is one its author designs, so she must be allowed to
    # create Secrets herself.
    namespace = install_chart(policies=policies).watched[0]
    put_secret(core, namespace, "her-account", string_data={"value": "v"})
    alice = User(control_plane, "alice", namespace)
    grant(rbac, namespace, "alice", [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(["her-account"])])
    wait_allowed(alice.api, namespace, "get", "secrets", "her-account")
    plain = {**spec_reading("her-account"), "tokenSecret": {"name": "plain-token"}}
    shaped = {**spec_reading("her-account"), "tokenSecret": {"labels": {"grafana_dashboard": "1"}}}

    assert alice.create("plain", plain, dry_run="All")["metadata"]["name"] == "plain"
    refused = refusal(lambda: alice.create("shaped", shaped, dry_run="All"))

    if not policies:
        assert refused is None, "RBAC alone let her shape a Secret she may not create"
        return
    assert refused is not None
    assert "shapes its token Secret" in refused
    assert "alice may not create Secrets" in refused
    grant(rbac, namespace, "alice", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}])
    wait_allowed(alice.api, namespace, "create", "secrets")
    assert alice.create("shaped", shaped)["metadata"]["name"] == "shaped"


@POLICIES
def test_any_spec_change_rechecks_every_reference_and_metadata_changes_none(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    namespace = install_chart(policies=policies).watched[0]
    for name in ("team-account", "database-password", "her-account"):
        put_secret(core, namespace, name, string_data={"value": f"{name}-value"})
    # A teammate who may read everything created the object; alice may edit ConnectorInstances
    # and read only her own account Secret.
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        instance_body("crm", spec_reading("team-account", "database-password")),
    )
    alice = User(control_plane, "alice", namespace)
    grant(rbac, namespace, "alice", [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(["her-account"])])
    wait_allowed(alice.api, namespace, "get", "secrets", "her-account")

    # The attack: her own account instead of the team's, so the database password (a reference
    # she did not add) would go to her account on the platform.
    swap = {"spec": {"credentialsSecretRef": {"name": "her-account"}}}
    refused = refusal(lambda: alice.patch("crm", swap, dry_run="All"))

    if policies:
        assert refused is not None
        assert "references Secret database-password, which alice may not get" in refused
    else:
        assert refused is None
    # Labels, annotations and finalizers send nothing anywhere: never checked.
    alice.patch("crm", {"metadata": {"labels": {"owner": "alice"}}})


def test_the_policy_checks_up_to_its_limit_by_name_and_any_number_with_namespace_wide_get(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    """An authorization check is expensive in the API server's CEL budget: MAX_CHECKED distinct
    Secrets are checked by name, beyond that the author needs `get` on the whole namespace."""
    namespace = install_chart().watched[0]
    names = [f"s{i}" for i in range(MAX_CHECKED + 1)]
    by_name = User(control_plane, "named-grants", namespace)
    grant(rbac, namespace, by_name.name, [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(names)])
    wait_allowed(by_name.api, namespace, "get", "secrets", names[-1])
    everything = User(control_plane, "namespace-reader", namespace)
    grant(rbac, namespace, everything.name, [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets()])
    wait_allowed(everything.api, namespace, "get", "secrets")
    # 200 entries (the CRD's maximum) cycling over the names: duplicates cost nothing.
    at_limit = spec_reading(names[0], *(names[1 + i % (MAX_CHECKED - 1)] for i in range(200)))
    over_limit = spec_reading(names[0], *(names[1 + i % MAX_CHECKED] for i in range(200)))
    all_distinct = spec_reading("account", *(f"distinct-{i}" for i in range(200)))

    assert refusal(lambda: by_name.create("at-limit", at_limit, dry_run="All")) is None
    refused = refusal(lambda: by_name.create("over-limit", over_limit, dry_run="All"))
    assert f"references {MAX_CHECKED + 1} distinct Secrets" in str(refused)
    # The last Secret of the limit is checked as well as the first.
    unreadable = spec_reading(names[0], *(names[1 + i % (MAX_CHECKED - 2)] for i in range(199)), "nope")
    refused = refusal(lambda: by_name.create("one-unreadable", unreadable, dry_run="All"))
    assert "references Secret nope, which named-grants may not get" in str(refused)
    assert refusal(lambda: everything.create("all-distinct", all_distinct, dry_run="All")) is None


# --- secret-writes: the operator's identity writes only what it manages -------------------------


@POLICIES
def test_the_operator_identity_cannot_write_secrets_it_does_not_manage(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    policies: bool,
    tmp_path: Path,
) -> None:
    # Cluster-wide: RBAC grants create/patch/delete on every Secret of every namespace.
    release = install_chart(namespaced=False, policies=policies)
    namespace = release.watched[0]
    put_secret(core, namespace, "database-password", string_data={"value": "s3cret"}, labels={"app": "db"})
    operator = client.CoreV1Api(service_account_client(control_plane, core, release, tmp_path))

    def token_secret(labels: dict[str, str] | None) -> client.V1Secret:
        return client.V1Secret(
            metadata=client.V1ObjectMeta(
                name="minted", labels=labels, annotations={"kubernetes.io/service-account.name": "default"}
            ),
            type="kubernetes.io/service-account-token",
        )

    def patch_input(body: dict[str, Any]) -> Callable[[], Any]:
        return lambda: operator.patch_namespaced_secret("database-password", namespace, body, dry_run="All")

    new_value = base64.b64encode(b"attacker").decode()
    attacks: dict[str, Callable[[], Any]] = {
        "a service-account token in kube-system": lambda: operator.create_namespaced_secret(
            "kube-system", token_secret(None), dry_run="All"
        ),
        "a service-account token labelled as ours": lambda: operator.create_namespaced_secret(
            namespace, token_secret(OURS), dry_run="All"
        ),
        # Issue 11 lets a tenant choose the token Secret's type, never one of Kubernetes' domains.
        "a bootstrap token labelled as ours": lambda: operator.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="boot", labels=OURS), type="bootstrap.kubernetes.io/token"
            ),
            dry_run="All",
        ),
        "an unlabelled Secret": lambda: operator.create_namespaced_secret(
            namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="plain")), dry_run="All"
        ),
        "the data of an input": patch_input({"data": {"value": new_value}}),
        "another label on an input": patch_input({"metadata": {"labels": {"app": "other"}}}),
        "adopting an input with our managed-by label": patch_input({"metadata": {"labels": OURS}}),
        "another finalizer on an input": patch_input({"metadata": {"finalizers": ["example.com/keep"]}}),
        "an annotation on an input": patch_input({"metadata": {"annotations": {"a": "b"}}}),
        "deleting an unlabelled Secret": lambda: operator.delete_namespaced_secret(
            "database-password", namespace, dry_run="All"
        ),
    }
    outcomes = {name: refusal(attack) for name, attack in attacks.items()}

    if policies:
        passed = {
            name for name, refused in outcomes.items() if not refused or "AdmissionPolicy" not in refused
        }
        assert passed == set()
        assert "may not create Secret kube-system/minted" in str(
            outcomes["a service-account token in kube-system"]
        )
    else:
        assert {name for name, refused in outcomes.items() if refused} == set(), "RBAC alone allows them all"


async def test_every_write_the_operator_makes_passes_the_policy(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
) -> None:
    """The operator's own code (kube/secrets.py) as its ServiceAccount, and the writes of the
    lifecycle work: the in-use finalizer on and off, the watch label off, the digest Secret."""
    release = install_chart(namespaced=False)
    namespace = release.watched[0]
    put_secret(core, namespace, "database-password", string_data={"value": "s3cret"}, labels={"app": "db"})
    owner_uid = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, instance_body("crm", spec_reading("database-password"))
    )["metadata"]["uid"]
    token = service_account_token(core, release.namespace)
    api = KubeAPI(
        lambda: kopf.ConnectionInfo(server=control_plane.server, ca_path=control_plane.ca_file, token=token)
    )
    secrets, owner = Secrets(api), Owner("crm", owner_uid)
    input_path = f"/api/v1/namespaces/{namespace}/secrets/database-password"

    async def patch_input(body: Any, content_type: str = MERGE_PATCH) -> None:
        await api.request("PATCH", input_path, body=body, content_type=content_type)

    try:
        await secrets.label_for_watch(namespace, "database-password")
        # Holding and releasing an input: the label and the finalizer, on and off, in one patch.
        await patch_input({"metadata": {"labels": {WATCH_LABEL: "input"}, "finalizers": [IN_USE]}}, STRATEGIC)
        await patch_input(
            {"metadata": {"labels": {WATCH_LABEL: None}, "$deleteFromPrimitiveList/finalizers": [IN_USE]}},
            STRATEGIC,
        )
        await patch_input({"metadata": {"finalizers": [IN_USE]}})
        await patch_input([{"op": "remove", "path": "/metadata/finalizers/0"}], JSON_PATCH)
        token_data = {"token": "t1", "instanceID": "1", "apiURL": "https://example.test/elements/api-v2"}
        assert await secrets.write_token(namespace, "crm-token", owner, token_data, None)
        current = await secrets.read(namespace, "crm-token")
        assert await secrets.write_token(
            namespace, "crm-token", owner, {**token_data, "token": "t2"}, current
        )
        # Issue 11: a shaped Secret, and a change of its type (delete, then create).
        shaped = SecretShape("servicebinding.io/open-connectors", {"team": "a"}, {"reloader": "true"})
        current = await secrets.read(namespace, "crm-token")
        assert await secrets.write_token(
            namespace, "crm-token", owner, {**token_data, "K": "v"}, current, shaped
        )
        await secrets.delete_token(namespace, "crm-token", owner_uid)
        digest = {
            "metadata": {"name": "digest-key", "labels": OURS},
            "type": "Opaque",
            "data": {"key": "a2V5"},
        }
        await api.request("POST", f"/api/v1/namespaces/{release.namespace}/secrets", body=digest)
    finally:
        await api.aclose()

    after = core.read_namespaced_secret("database-password", namespace)
    assert (after.metadata.labels, after.metadata.finalizers) == ({"app": "db"}, None)
    assert base64.b64decode(after.data["value"]) == b"s3cret"
    assert "crm-token" not in {s.metadata.name for s in core.list_namespaced_secret(namespace).items}
    assert core.read_namespaced_secret("digest-key", release.namespace).type == "Opaque"
