"""The chart's secret-holds policy on the real API server (tenant-findings N17).

The operator keeps every Secret a ConnectorInstance reads from being deleted: its in-use finalizer
stays until no object references the Secret (engine/secretholds.py). So referencing a Secret
decides that its deletion waits, and a tenant who may only `get` a Secret that others manage
could pin it. The policy lets an author newly reference only Secrets she may `delete` herself;
a reference already in the spec (someone else added it) is not checked again.

The authors here may `get` every Secret of the namespace, so that the secret-references policy
(test_admission.py) never refuses: each refusal below is this policy's. Each case also runs with
`admissionPolicies.enabled=false`, where RBAC alone lets the pin through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from connector_operator.api.names import GROUP, PLURAL, VERSION
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import MANAGE_INSTANCES, Release, grant, instance_body, refusal
from tests.chart.test_admission import (
    MAX_CHECKED,
    User,
    may_get_secrets,
    put_secret,
    spec_reading,
    wait_allowed,
)

POLICIES = pytest.mark.parametrize("policies", [True, False], ids=["policies", "without-policies"])


def may_delete_secrets(names: list[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}
    return rule if names is None else {**rule, "resourceNames": names}


def pinning(name: str, secret: str, user: str) -> str:
    return (
        f"ConnectorInstance {name} newly references Secret {secret}, which {user} may not delete: the"
        " operator keeps a Secret an object reads from being deleted (finalizer openconnectors.io/in-use)"
    )


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


def alice_in(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> User:
    """Alice may read every Secret of the watched namespace and delete only `her-account`; the
    namespace also holds `team-db` and `team-cache`, which others manage."""
    namespace = install_chart(policies=policies).watched[0]
    for name in ("her-account", "team-db", "team-cache"):
        put_secret(core, namespace, name, string_data={"value": f"{name}-value"})
    alice = User(control_plane, "alice", namespace)
    grant(
        rbac, namespace, "alice", [MANAGE_INSTANCES, may_get_secrets(), may_delete_secrets(["her-account"])]
    )
    wait_allowed(alice.api, namespace, "delete", "secrets", "her-account")
    return alice


@POLICIES
@pytest.mark.parametrize("where", ["credentialsSecretRef", "configuration"])
def test_an_author_may_pin_only_secrets_she_could_delete(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
    where: str,
) -> None:
    alice = alice_in(install_chart, control_plane, core, rbac, policies)
    spec = (
        spec_reading("team-db") if where == "credentialsSecretRef" else spec_reading("her-account", "team-db")
    )

    refused = refusal(lambda: alice.create("pin", spec, dry_run="All"))

    if not policies:
        assert refused is None, "RBAC alone let her pin a Secret she may not delete"
        return
    assert refused is not None
    assert "ValidatingAdmissionPolicy" in refused
    assert pinning("pin", "team-db", "alice") in refused
    # Her own Secret, which she may delete: the operator may hold it for her object.
    assert alice.create("hers", spec_reading("her-account"))["metadata"]["name"] == "hers"
    # Once she may delete team-db as well, the first spec goes through.
    grant(rbac, alice.namespace, "alice", [may_delete_secrets(["team-db"])])
    wait_allowed(alice.api, alice.namespace, "delete", "secrets", "team-db")
    assert alice.create("pin", spec)["metadata"]["name"] == "pin"


@POLICIES
def test_only_newly_added_references_are_checked(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    """A teammate who may delete team-db made the object; alice edits it. What she does not add is
    held on the teammate's behalf already: her other edits pass, her own new reference does not."""
    alice = alice_in(install_chart, control_plane, core, rbac, policies)
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, alice.namespace, PLURAL, instance_body("crm", spec_reading("team-db"))
    )
    added = spec_reading("team-db", "her-account", "team-cache")

    assert refusal(lambda: alice.patch("crm", {"spec": {"tags": ["crm"]}}, dry_run="All")) is None
    refused = refusal(lambda: alice.patch("crm", {"spec": added}, dry_run="All"))

    if not policies:
        assert refused is None, "RBAC alone let her pin a Secret she may not delete"
        return
    assert refused is not None
    assert pinning("crm", "team-cache", "alice") in refused
    assert "newly references Secret team-db" not in refused
    assert alice.patch("crm", {"spec": spec_reading("team-db", "her-account")})["metadata"]["generation"] == 2


def test_the_policy_checks_up_to_its_limit_by_name_and_any_number_with_namespace_wide_delete(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    """Its own CEL budget, as secret-references has: MAX_CHECKED new Secrets by name, beyond that
    `delete` on the whole namespace; the last one checked is checked as well as the first."""
    namespace = install_chart().watched[0]
    names = [f"s{i}" for i in range(MAX_CHECKED + 1)]
    by_name = User(control_plane, "named-deletes", namespace)
    grant(rbac, namespace, by_name.name, [MANAGE_INSTANCES, may_get_secrets(), may_delete_secrets(names)])
    wait_allowed(by_name.api, namespace, "delete", "secrets", names[-1])
    everything = User(control_plane, "namespace-deleter", namespace)
    grant(rbac, namespace, everything.name, [MANAGE_INSTANCES, may_get_secrets(), may_delete_secrets()])
    wait_allowed(everything.api, namespace, "delete", "secrets")
    # 200 entries (the CRD's maximum) cycling over the names: duplicates cost nothing.
    at_limit = spec_reading(names[0], *(names[1 + i % (MAX_CHECKED - 1)] for i in range(200)))
    over_limit = spec_reading(names[0], *(names[1 + i % MAX_CHECKED] for i in range(200)))
    last_kept = spec_reading(names[0], *(names[1 + i % (MAX_CHECKED - 2)] for i in range(199)), "nope")

    assert refusal(lambda: by_name.create("at-limit", at_limit, dry_run="All")) is None
    refused = refusal(lambda: by_name.create("over-limit", over_limit, dry_run="All"))
    assert f"newly references {MAX_CHECKED + 1} distinct Secrets" in str(refused)
    assert pinning("last", "nope", by_name.name) in str(
        refusal(lambda: by_name.create("last", last_kept, dry_run="All"))
    )
    all_distinct = spec_reading("account", *(f"distinct-{i}" for i in range(200)))
    assert refusal(lambda: everything.create("all-distinct", all_distinct, dry_run="All")) is None
