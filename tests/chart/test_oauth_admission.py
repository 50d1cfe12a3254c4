"""The chart's admission policies and spec.oauth's Secrets, on the real API server (issue 22).

spec.oauth names three Secrets the operator reads: the app credentials, and the grant's source,
the authorization Secret (`kubectl openconnectors authorize` writes the one-time code there) or a
refresh token. secret-references checks `get` on them as on every other Secret of the spec (any
spec change re-checks them all); secret-holds lets an author newly reference only those she may
`delete` (a kept reference is not checked again). They share the policies' one list of references,
so the CEL cost budget of one evaluation (10,000,000, spent per request: the API server accepts
any policy, and refuses a request whose evaluation runs out) is tried with the costliest object
the CRD allows. secret-writes lets the operator remove the one-time keys of an authorization
Secret, and change nothing else of it.

Each attack also runs with `admissionPolicies.enabled=false`, where RBAC alone lets it through.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes import client

from connector_operator.api.names import GROUP, PLURAL, VERSION, WATCH_LABEL
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.grantsecret import discard
from hack.controlplane.cluster import ControlPlane
from tests.chart.conftest import (
    DELETE_SECRETS,
    MANAGE_INSTANCES,
    Release,
    grant,
    instance_body,
    refusal,
    service_account_client,
    service_account_token,
)
from tests.chart.test_admission import (
    MAX_CHECKED,
    User,
    may_get_secrets,
    put_secret,
    spec_reading,
    wait_allowed,
)
from tests.chart.test_secret_holds import alice_in, may_delete_secrets, pinning

POLICIES = pytest.mark.parametrize("policies", [True, False], ids=["policies", "without-policies"])
CALLBACK = "http://127.0.0.1:8765/callback"
GRANTS = ("authorizationSecretRef", "refreshTokenSecretRef")


def oauth_spec(account: str, app: str, *configuration_secrets: str, **grant_source: str) -> dict[str, Any]:
    """`spec_reading` with spec.oauth: `app` and one grant source, `authorizationSecretRef=...` or
    `refreshTokenSecretRef=...`."""
    [(field, name)] = grant_source.items()
    oauth = {"appCredentialsSecretRef": {"name": app}, "callbackURL": CALLBACK, field: {"name": name}}
    return {**spec_reading(account, *configuration_secrets), "oauth": oauth}


def cannot_get(kind_name: str, secret: str, user: str) -> str:
    return f"{kind_name} references Secret {secret}, which {user} may not get"


@pytest.fixture
def rbac(api_client: client.ApiClient) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(api_client)


@POLICIES
def test_an_author_may_reference_only_oauth_secrets_she_can_get(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    """Alice may read her account only, Bob the app credentials too, Carol all: each oauth Secret
    someone cannot read is named in the refusal of a create and of an update that adds it."""
    namespace = install_chart(policies=policies).watched[0]
    for name in ("her-account", "crm-app", "crm-consent", "crm-refresh"):
        put_secret(core, namespace, name, string_data={"value": f"{name}-value"})
    readers = {
        "alice": ["her-account"],
        "bob": ["her-account", "crm-app"],
        "carol": ["her-account", "crm-app", "crm-consent", "crm-refresh"],
    }
    users = {}
    for name, readable in readers.items():
        grant(rbac, namespace, name, [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(readable)])
        users[name] = User(control_plane, name, namespace)
    for name, readable in readers.items():
        wait_allowed(users[name].api, namespace, "get", "secrets", readable[-1])
    # A teammate's instance without OAuth, which Bob and Carol then give spec.oauth.
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, instance_body("crm", spec_reading("her-account"))
    )
    consent = oauth_spec("her-account", "crm-app", authorizationSecretRef="crm-consent")
    refresh = oauth_spec("her-account", "crm-app", refreshTokenSecretRef="crm-refresh")
    alice, bob, carol = users["alice"], users["bob"], users["carol"]

    refused = {
        "alice: app credentials": refusal(lambda: alice.create("oauth", consent, dry_run="All")),
        "bob: authorization": refusal(lambda: bob.create("oauth", consent, dry_run="All")),
        "bob: refresh token": refusal(lambda: bob.create("oauth", refresh, dry_run="All")),
        "bob: authorization added": refusal(
            lambda: bob.patch("crm", {"spec": {"oauth": consent["oauth"]}}, dry_run="All")
        ),
    }

    if not policies:
        assert refused == dict.fromkeys(refused), "RBAC alone let them reference Secrets they cannot read"
        return
    assert cannot_get("ConnectorInstance oauth", "crm-app", "alice") in str(refused["alice: app credentials"])
    assert cannot_get("ConnectorInstance oauth", "crm-consent", "bob") in str(refused["bob: authorization"])
    assert cannot_get("ConnectorInstance oauth", "crm-refresh", "bob") in str(refused["bob: refresh token"])
    assert cannot_get("ConnectorInstance crm", "crm-consent", "bob") in str(
        refused["bob: authorization added"]
    )
    # Who may read them all is let through, on create as on update.
    assert carol.create("consent", consent)["metadata"]["name"] == "consent"
    assert carol.create("refresh", refresh)["metadata"]["name"] == "refresh"
    assert carol.patch("crm", {"spec": {"oauth": refresh["oauth"]}})["metadata"]["generation"] == 2


@POLICIES
def test_any_spec_change_rechecks_the_oauth_references(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    """As for every reference (test_admission.py): a teammate's instance reads the team's OAuth
    app; Alice, who cannot read it, may not change its spec, however unrelated her change."""
    namespace = install_chart(policies=policies).watched[0]
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        instance_body("crm", oauth_spec("her-account", "team-app", refreshTokenSecretRef="her-refresh")),
    )
    alice = User(control_plane, "alice", namespace)
    grant(
        rbac,
        namespace,
        "alice",
        [MANAGE_INSTANCES, DELETE_SECRETS, may_get_secrets(["her-account", "her-refresh"])],
    )
    wait_allowed(alice.api, namespace, "get", "secrets", "her-refresh")

    refused = refusal(lambda: alice.patch("crm", {"spec": {"tags": ["crm"]}}, dry_run="All"))

    if policies:
        assert cannot_get("ConnectorInstance crm", "team-app", "alice") in str(refused)
    else:
        assert refused is None
    # Labels, annotations and finalizers send nothing anywhere: never checked.
    alice.patch("crm", {"metadata": {"labels": {"owner": "alice"}}})


@POLICIES
def test_an_author_may_newly_pin_only_oauth_secrets_she_could_delete(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    rbac: client.RbacAuthorizationV1Api,
    policies: bool,
) -> None:
    """secret-holds: Alice may read every Secret and delete only her-account. Each oauth field
    naming team-db is refused on create; on a teammate's instance a kept oauth reference is not
    checked again, a newly added grant Secret is."""
    alice = alice_in(install_chart, control_plane, core, rbac, policies)
    specs = {
        "app credentials": oauth_spec("her-account", "team-db", authorizationSecretRef="her-account"),
        "authorization": oauth_spec("her-account", "her-account", authorizationSecretRef="team-db"),
        "refresh token": oauth_spec("her-account", "her-account", refreshTokenSecretRef="team-db"),
    }
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP,
        VERSION,
        alice.namespace,
        PLURAL,
        instance_body("crm", oauth_spec("her-account", "team-db", authorizationSecretRef="team-cache")),
    )
    to_refresh = {"authorizationSecretRef": None, "refreshTokenSecretRef": {"name": "team-refresh"}}

    def create(spec: dict[str, Any]) -> Callable[[], Any]:
        return lambda: alice.create("pin", spec, dry_run="All")

    refused = {what: refusal(create(spec)) for what, spec in specs.items()}
    kept = refusal(lambda: alice.patch("crm", {"spec": {"tags": ["crm"]}}, dry_run="All"))
    added = refusal(lambda: alice.patch("crm", {"spec": {"oauth": to_refresh}}, dry_run="All"))

    assert kept is None, "references kept by an update need no new check"
    if not policies:
        assert (refused, added) == (dict.fromkeys(specs), None), "RBAC alone let her pin a Secret"
        return
    assert {
        what: pinning("pin", "team-db", "alice") in str(message) for what, message in refused.items()
    } == (dict.fromkeys(specs, True))
    assert pinning("crm", "team-refresh", "alice") in str(added)
    assert "Secret team-db" not in str(added)  # kept: held on the teammate's behalf already
    mine = {"authorizationSecretRef": None, "refreshTokenSecretRef": {"name": "her-account"}}
    assert alice.patch("crm", {"spec": {"oauth": mine}})["metadata"]["generation"] == 2


def test_the_costliest_oauth_object_is_checked_within_the_cel_budget(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    rbac: client.RbacAuthorizationV1Api,
) -> None:
    """The most authorization checks one evaluation of secret-references makes (350,000 of the
    10,000,000 each): `get` on the namespace's Secrets, on MAX_CHECKED Secrets one by one, on the
    ConnectorAccount of accountRef and `create` for a shaped token Secret; with spec.oauth's two
    references and the CRD's 200 configuration entries over 63-character names (a Secret name's
    length counts in the cost of finding the distinct ones). Measured with the API server's
    evaluator: about 9,960,000 of the budget (from 70-character names it runs out). secret-holds
    checks the same names (about 9,270,000). Over budget the API server refuses, 422."""
    namespace = install_chart().watched[0]
    names = [f"s{i:02d}-" + "x" * 59 for i in range(MAX_CHECKED)]
    author = User(control_plane, "named-grants", namespace)
    grant(
        rbac,
        namespace,
        author.name,
        [
            MANAGE_INSTANCES,
            may_get_secrets(names),
            may_delete_secrets(names),
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
            {
                "apiGroups": [GROUP],
                "resources": ["connectoraccounts"],
                "verbs": ["get"],
                "resourceNames": ["team"],
            },
        ],
    )
    wait_allowed(author.api, namespace, "delete", "secrets", names[-1])  # one Role: all its rules with it

    def costliest(grant_secret: str) -> dict[str, Any]:
        spec = oauth_spec("unused", names[0], *(names[2 + i % (MAX_CHECKED - 2)] for i in range(200)),
                          authorizationSecretRef=grant_secret)  # fmt: skip
        del spec["credentialsSecretRef"]  # accountRef excludes it
        account = {"kind": "ConnectorAccount", "name": "team"}
        return {**spec, "accountRef": account, "tokenSecret": {"labels": {"team": "crm"}}}

    assert refusal(lambda: author.create("costliest", costliest(names[1]), dry_run="All")) is None
    # The oauth references are among the Secrets checked by name, the configuration filling the rest.
    refused = refusal(lambda: author.create("unlisted", costliest("unlisted"), dry_run="All"))
    assert "references Secret unlisted, which named-grants may not" in str(refused)


@POLICIES
async def test_the_operator_may_only_remove_the_one_time_keys_of_an_authorization_secret(
    install_chart: Callable[..., Release],
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    policies: bool,
    tmp_path: Path,
) -> None:
    """secret-writes: the operator's own code (kube/grantsecret.py), as its ServiceAccount, removes
    `code`, `state` and a provider's `error` once it used or refused them, other keys left alone
    (the Secret may hold the app credentials too); and it may do no more: no key planted or
    changed, no other key removed, nothing removed from a Secret it does not watch."""
    release = install_chart(namespaced=False, policies=policies)  # RBAC: patch on every Secret
    namespace = release.watched[0]
    watched = {WATCH_LABEL: "input"}  # as the authorize command and the operator label them
    put_secret(core, namespace, "crm-consent", string_data={"code": "c-1", "state": "s-1"}, labels=watched)
    shared = {"clientId": "id", "clientSecret": "cs", "error": "access_denied", "state": "s-2"}
    put_secret(core, namespace, "crm-shared", string_data=shared, labels=watched)
    put_secret(core, namespace, "unwatched", string_data={"code": "c-3", "password": "p"})
    put_secret(core, namespace, "database-password", string_data={"value": "s3cret"}, labels=watched)
    operator = client.CoreV1Api(service_account_client(control_plane, core, release, tmp_path))

    def patch(name: str, body: dict[str, Any]) -> Callable[[], Any]:
        return lambda: operator.patch_namespaced_secret(name, namespace, body, dry_run="All")

    planted = base64.b64encode(b"planted").decode()
    attacks = {
        "a code planted": patch("crm-shared", {"data": {"code": planted}}),
        "a changed state": patch("crm-consent", {"data": {"state": planted}}),
        "another key removed with the grant": patch(
            "crm-shared", {"data": {"error": None, "clientSecret": None}}
        ),
        "a code removed from a Secret it does not watch": patch("unwatched", {"data": {"code": None}}),
        "an input's key removed": patch("database-password", {"data": {"value": None}}),
        "a label changed with the removal": patch(
            "crm-consent", {"metadata": {"labels": {"app": "x"}}, "data": {"code": None}}
        ),
    }
    outcomes = {name: refusal(attack) for name, attack in attacks.items()}
    token = service_account_token(core, release.namespace)
    api = KubeAPI(
        lambda: kopf.ConnectionInfo(server=control_plane.server, ca_path=control_plane.ca_file, token=token)
    )
    try:  # a code used, a denial reported: only the values the operator read
        used = await discard(api, namespace, "crm-consent", {"code": "c-1", "state": "s-1"})
        reported = await discard(api, namespace, "crm-shared", {"error": "access_denied", "state": "s-2"})
    finally:
        await api.aclose()

    assert (used, reported) == (True, True)
    assert core.read_namespaced_secret("crm-consent", namespace).data is None
    left = core.read_namespaced_secret("crm-shared", namespace).data
    assert {k: base64.b64decode(v).decode() for k, v in left.items()} == {
        "clientId": "id",
        "clientSecret": "cs",
    }
    if not policies:
        assert outcomes == dict.fromkeys(attacks), "RBAC alone allows them all"
        return
    assert {
        name for name, refused in outcomes.items() if "ValidatingAdmissionPolicy" not in str(refused)
    } == set()
    assert f"may not change Secret {namespace}/unwatched" in str(
        outcomes["a code removed from a Secret it does not watch"]
    )
