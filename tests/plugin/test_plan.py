"""`kubectl openconnectors plan`'s logic (kubectl_openconnectors/plan.py) on a real API server.

No operator runs: the stored objects and their status are written here with the kubernetes client,
as the operator would have left them, and the plan is computed against them. What it shows: a new
object is `create`, or `adopt` with spec.instanceID; a manifest equal to the applied object, with
the operator's defaults left out and its tags reordered, is `nothing`; a changed spec is `update`
naming the fields, and says which reach the platform; a changed key of a Secret in the file is
named on the Secret and on the objects that read it, and no value appears anywhere in the plan;
an invalid manifest is `error` with the API server's own message, and nothing is ever written;
the exit codes follow.
"""

from __future__ import annotations

import base64
import copy
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api import crd, names
from connector_operator.api.spec import INSTANCE_ID_FIXED
from kubectl_openconnectors import plan
from tests.api.conftest import install

NOW = "2026-01-01T00:00:00Z"
CLUSTER_ACCOUNTS = (names.GROUP, names.VERSION, names.CLUSTER_ACCOUNT_PLURAL)
ABSENT_ACCOUNT = {"kind": "ClusterConnectorAccount", "name": "absent"}
NOWHERE = {"secretKeyRef": {"name": "nowhere", "key": "k"}}
OLD_VALUE, NEW_VALUE = "old-api-key-Zq81", "new-api-key-Vx27"  # must never appear in a plan


@pytest.fixture(scope="module")
def crds(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    for resource in crd.RESOURCES:
        install(ext, crd.definition(resource))


def instance(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": names.KIND,
        "metadata": {"name": name},
        "spec": {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}, **spec},
    }


def secret(name: str, **values: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


def store(
    custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any], *, synced: bool = True, **more: Any
) -> None:
    """The object as the operator leaves it: created, then its status written for its generation."""
    created = custom.create_namespaced_custom_object(
        names.GROUP, names.VERSION, namespace, names.PLURAL, copy.deepcopy(body)
    )
    generation = created["metadata"]["generation"]
    condition = {
        "type": "Synced",
        "status": "True" if synced else "False",
        "reason": "ReconcileSuccess" if synced else "WaitingForSecret",
        "lastTransitionTime": NOW,
        "observedGeneration": generation,
    }
    status = {
        "observedGeneration": generation if synced else 0,
        "instanceID": 4711 if synced else None,
        "appliedDigest": "v2:hmac-sha256:0123456789abcdef0123456789abcdef" if synced else None,
        "conditions": [condition],
        **more,
    }
    custom.patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.PLURAL, body["metadata"]["name"], {"status": status}
    )


def by_name(items: list[plan.Item]) -> dict[str, plan.Item]:
    return {item.name: item for item in items}


def test_new_objects_are_created_or_adopted_and_nothing_is_written(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, namespace: str, crds: None
) -> None:
    taking = instance("taking", instanceID=500)
    taking["metadata"]["annotations"] = {"openconnectors.io/take-over-from": "0b6f3c2e-uid"}
    documents = [
        secret("account", userSecret="u", organizationSecret="o"),
        instance("fresh", tokenSecret={"name": "fresh-credentials"}),
        instance("adopting", instanceID=412345),
        instance("watching", instanceID=412346, managementPolicy="ObserveOnly"),
        taking,
        instance("orphaned-input", configuration=[{"key": "username", "valueFrom": NOWHERE}]),
        {**instance("tenant"), "spec": {"connectorKey": "closeio", "accountRef": ABSENT_ACCOUNT}},
    ]  # fmt: skip

    items = by_name(plan.compute(api_client, documents, namespace))

    assert items["account"] == plan.Item(
        "Secret", namespace, "account", "create", (), "keys: organizationSecret, userSecret"
    )
    assert items["fresh"].action == "create"
    assert "one POST" in items["fresh"].detail
    assert "fresh-credentials" in items["fresh"].detail
    assert items["adopting"].action == "adopt"
    assert "adopts instance 412345 with one PUT" in items["adopting"].detail
    assert items["watching"].action == "adopt"
    assert "ObserveOnly: reads instance 412346, never writes it" in items["watching"].detail
    assert items["taking"].action == "adopt"
    assert "taking it over from object 0b6f3c2e-uid" in items["taking"].detail
    assert items["orphaned-input"].action == "create"
    assert "waits for Secret nowhere" in items["orphaned-input"].detail  # `account` comes with the file
    assert "waits for ClusterConnectorAccount absent" in items["tenant"].detail
    assert plan.exit_code(items.values()) == 1
    # A dry run: the API server judged every object and stored none.
    listed = custom.list_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL)
    assert listed["items"] == []
    assert client.CoreV1Api(api_client).list_namespaced_secret(namespace).items == []


def test_an_applied_manifest_without_the_defaults_is_nothing(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    crds: None,
) -> None:
    stored = instance(
        "acme", tags=["b", "a"], deletionPolicy="Delete", managementPolicy="Full",
        tokenSecret={"name": "acme-token"}, instanceName=f"{namespace}-acme",
        configuration=[{"key": "x", "value": "1"}, {"key": "y", "value": "2"}],
    )  # fmt: skip
    store(custom, namespace, stored)
    core.create_namespaced_secret(namespace, secret("account", userSecret="u", organizationSecret="o"))
    manifest = instance(
        "acme", tags=["a", "b"], configuration=[{"key": "y", "value": "2"}, {"key": "x", "value": "1"}]
    )
    # A manifest still written for v1alpha1 (served, the same schema) plans the same.
    earlier = {**manifest, "apiVersion": f"{names.GROUP}/v1alpha1"}

    for written in (manifest, earlier):
        items = plan.compute(
            api_client, [written, secret("account", organizationSecret="o", userSecret="u")], namespace
        )
        assert [(i.kind, i.name, i.action, i.fields) for i in items] == [
            ("ConnectorInstance", "acme", "nothing", ()),
            ("Secret", "account", "nothing", ()),
        ]
        assert plan.exit_code(items) == 0


def test_a_pending_stored_spec_is_said_so(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, namespace: str, crds: None
) -> None:
    store(custom, namespace, instance("waiting"), synced=False)

    [item] = plan.compute(api_client, [instance("waiting")], namespace)

    assert item.action == "nothing"
    assert "still pending: Synced False, WaitingForSecret" in item.detail


def test_a_changed_spec_is_an_update_naming_its_fields(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, namespace: str, crds: None
) -> None:
    store(
        custom,
        namespace,
        instance("acme", tags=["a"], configuration=[{"key": "pagination.max", "value": "50"}]),
    )
    manifest = instance(
        "acme", tags=["a", "b"], configuration=[{"key": "pagination.max", "value": "100"}],
        deletionPolicy="Orphan", resyncInterval="15m",
    )  # fmt: skip
    manifest["metadata"]["annotations"] = {"openconnectors.io/paused": "true"}

    [item] = plan.compute(api_client, [manifest], namespace)

    assert item.action == "update"
    assert item.fields == (
        "spec.configuration.pagination.max",
        "spec.deletionPolicy",
        "spec.resyncInterval",
        "spec.tags",
        "metadata.annotations.openconnectors.io/paused",
    )
    assert "one PUT of instance 4711 for spec.configuration, spec.tags" in item.detail
    assert "no platform write for spec.deletionPolicy (used at deletion), spec.resyncInterval" in item.detail
    assert "paused" in item.detail
    assert plan.exit_code([item]) == 1


def test_observe_only_shows_its_planned_action_and_a_switch_to_full_adopts(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, namespace: str, crds: None
) -> None:
    observer = instance("observer", instanceID=412346, managementPolicy="ObserveOnly")
    store(custom, namespace, observer, plannedAction="Update: instanceName, tags")
    full = instance("observer", instanceID=412346)  # managementPolicy left out: Full

    [unchanged] = plan.compute(api_client, [observer], namespace)
    [switched] = plan.compute(api_client, [full], namespace)

    assert unchanged.action == "nothing"
    assert "status.plannedAction: Update: instanceName, tags" in unchanged.detail
    assert switched.action == "update"
    assert switched.fields == ("spec.managementPolicy",)
    assert "switches to Full: adopts instance 412346 with one PUT" in switched.detail


def test_a_changed_secret_key_is_named_never_its_value(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    crds: None,
) -> None:
    """The Secret's own item names its changed and added keys; the instance in the file and the
    stored one outside it that read the changed key are updates naming the Secret and the key."""
    key_ref = {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}
    reader = instance("reader", configuration=[{"key": "username", "valueFrom": key_ref}])
    store(custom, namespace, reader)
    store(custom, namespace, {**reader, "metadata": {"name": "other-reader"}})
    store(custom, namespace, instance("bystander"))
    core.create_namespaced_secret(namespace, secret("closeio-api", apiKey=OLD_VALUE, unchanged="same"))
    changed = secret("closeio-api", unchanged="same", added="x")
    changed["data"] = {"apiKey": base64.b64encode(NEW_VALUE.encode()).decode()}  # data and stringData

    items = plan.compute(api_client, [changed, reader], namespace)

    assert [(i.kind, i.name, i.action, i.fields) for i in items] == [
        ("Secret", "closeio-api", "update", ("data.added", "data.apiKey")),
        ("ConnectorInstance", "reader", "update", ("Secret closeio-api keys: apiKey",)),
        ("ConnectorInstance", "other-reader", "update", ("Secret closeio-api keys: apiKey",)),
    ]
    assert items[0].detail == "changed: apiKey; added: added"
    assert "one PUT of instance 4711 for Secret closeio-api keys: apiKey" in items[1].detail
    assert "not in the file" in items[2].detail
    shown = repr(items)
    for value in (OLD_VALUE, NEW_VALUE):
        assert value not in shown
        assert base64.b64encode(value.encode()).decode() not in shown
    assert (
        core.read_namespaced_secret("closeio-api", namespace).data["apiKey"]
        == base64.b64encode(OLD_VALUE.encode()).decode()
    )


def test_accounts_a_new_one_and_one_whose_credentials_change(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    crds: None,
) -> None:
    """A ClusterConnectorAccount outside the file reads the Secret of another namespace that the
    file changes: it is named with that namespace, and with the credential key only."""
    shared = f"plan-{uuid.uuid4().hex[:8]}"
    account = {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": "ClusterConnectorAccount",
        "metadata": {"name": shared},
        "spec": {"credentialsSecretRef": {"name": "platform", "namespace": namespace}},
    }
    created = custom.create_cluster_custom_object(*CLUSTER_ACCOUNTS, account)
    ready = {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": NOW}
    status = {"observedGeneration": created["metadata"]["generation"], "conditions": [ready]}
    custom.patch_cluster_custom_object_status(*CLUSTER_ACCOUNTS, shared, {"status": status})
    core.create_namespaced_secret(namespace, secret("platform", userSecret=OLD_VALUE, organizationSecret="o"))
    team = {**account, "kind": "ConnectorAccount", "metadata": {"name": "team"}}
    team["spec"] = {"credentialsSecretRef": {"name": "platform"}}

    items = plan.compute(
        api_client,
        [secret("platform", userSecret=NEW_VALUE, organizationSecret="o"), team],
        namespace,
    )

    assert [(i.kind, i.namespace, i.name, i.action, i.fields) for i in items] == [
        ("Secret", namespace, "platform", "update", ("data.userSecret",)),
        ("ConnectorAccount", namespace, "team", "create", ()),
        ("ClusterConnectorAccount", "", shared, "update", (f"Secret {namespace}/platform keys: userSecret",)),
    ]
    assert (
        items[2].detail == "the operator verifies the account secrets with one platform call; not in the file"
    )
    assert NEW_VALUE not in repr(items)
    assert OLD_VALUE not in repr(items)


def test_an_invalid_manifest_is_an_error_with_the_servers_reason(
    api_client: client.ApiClient, custom: client.CustomObjectsApi, namespace: str, crds: None
) -> None:
    store(custom, namespace, instance("pinned", instanceID=7))
    documents = [
        instance("too-fast", resyncInterval="5s"),  # the CRD's CEL rule, on create
        instance("pinned", instanceID=8),  # the transition rule, on the stored object
        {**instance("wrong-version"), "apiVersion": "openconnectors.io/v1"},
        instance("fine"),
    ]

    items = by_name(plan.compute(api_client, documents, namespace))

    assert items["too-fast"].action == "error"
    assert "spec.resyncInterval" in items["too-fast"].detail
    assert "between 30s and 168h" in items["too-fast"].detail
    assert items["pinned"].action == "error"
    assert INSTANCE_ID_FIXED in items["pinned"].detail
    assert items["wrong-version"].action == "error"
    assert items["fine"].action == "create"
    assert plan.exit_code(items.values()) == 2
    with pytest.raises(ApiException) as absent:
        custom.get_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, "fine")
    assert absent.value.status == 404


def test_exit_codes() -> None:
    def item(action: str, refused_you: bool = False) -> plan.Item:
        return plan.Item("ConnectorInstance", "ns", uuid.uuid4().hex, action, refused_you=refused_you)

    assert plan.exit_code([]) == 0
    assert plan.exit_code([item("nothing"), item("nothing")]) == 0
    for action in ("create", "adopt", "update"):
        assert plan.exit_code([item("nothing"), item(action)]) == 1
    assert plan.exit_code([item("update"), item("error"), item("nothing")]) == 2
    assert plan.exit_code([item("error"), item("error", refused_you=True), item("update")]) == 5


def test_a_secret_is_compared_in_memory_and_never_sent_in_a_dry_run(
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    namespace: str,
    crds: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request of the plan, recorded at the API client (the real one, on the real server):
    a dry run carries a Secret's values, which an audit policy may record, so no Secret is sent;
    the one stored Secret outside the file that a new object needs is asked as metadata only.
    The instance, the operator's kind, is still judged by a dry run."""
    core.create_namespaced_secret(namespace, secret("closeio-api", apiKey=OLD_VALUE, same="s"))
    core.create_namespaced_secret(namespace, secret("account", userSecret=OLD_VALUE, organizationSecret="o"))
    requests: list[tuple[str, str, dict[str, str]]] = []
    answers: dict[str, Any] = {}
    call = api_client.call_api

    def recording(path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        accept = (kwargs.get("header_params") or {}).get("Accept", "")
        requests.append((method, path, dict(kwargs.get("query_params") or []) | {"accept": accept}))
        answers[path] = call(path, method, *args, **kwargs)  # a 404 raises: no answer
        return answers[path]

    monkeypatch.setattr(api_client, "call_api", recording)
    key_ref = {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}
    documents = [
        secret("closeio-api", apiKey=NEW_VALUE, same="s"),
        secret("fresh", token=NEW_VALUE),
        instance("reader", configuration=[{"key": "username", "valueFrom": key_ref}]),
    ]

    items = plan.compute(api_client, documents, namespace)

    assert [(i.kind, i.name, i.action, i.fields, i.detail) for i in items] == [
        ("Secret", "closeio-api", "update", ("data.apiKey",), "changed: apiKey"),
        ("Secret", "fresh", "create", (), "keys: token"),
        ("ConnectorInstance", "reader", "create", (), items[2].detail),
    ]
    secrets = [(m, p, q) for m, p, q in requests if "/secrets" in p]
    assert all(m == "GET" and "dryRun" not in q for m, p, q in secrets), secrets
    files = {f"{p.rsplit('/', 1)[1]}": q["accept"] for m, p, q in secrets}
    assert files == {
        "closeio-api": "application/json",  # the file's Secret: its stored copy, to compare
        "fresh": "application/json",
        "account": plan.METADATA,  # only whether it exists
    }
    account = next(answer for path, answer in answers.items() if path.endswith("/secrets/account"))
    assert (account["kind"], "data" in account) == ("PartialObjectMetadata", False)
    assert any(q.get("dryRun") == "All" and "/connectorinstances" in p for m, p, q in requests)
    assert NEW_VALUE not in repr(items)


def test_a_secret_the_api_server_would_refuse_is_an_error_found_here(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, crds: None
) -> None:
    """Its shape (the name, data's base64, stringData's strings, the keys), and what may not
    change of a stored one (type; an immutable Secret's content), named without a value."""
    frozen = {**secret("frozen", k=OLD_VALUE), "immutable": True}
    core.create_namespaced_secret(namespace, frozen)
    core.create_namespaced_secret(namespace, {**secret("typed", k="v"), "type": "example.com/typed"})
    bad = {
        "bad-base64": {"data": {"k": OLD_VALUE + "!"}},
        "number": {"stringData": {"port": 8080}},
        "bad-key": {"stringData": {"a/b": "v"}},
        "Bad_Name": {"stringData": {"k": "v"}},
        "not-a-map": {"data": ["k"]},
        "frozen": {"stringData": {"k": NEW_VALUE}},
        "typed": {"stringData": {"k": "v"}},  # Opaque now
    }
    documents = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n}, **b} for n, b in bad.items()]
    documents.append(secret("frozen-same", k="v"))

    items = by_name(plan.compute(api_client, documents, namespace))

    assert {n: i.action for n, i in items.items()} == dict.fromkeys(bad, "error") | {"frozen-same": "create"}
    assert items["bad-base64"].detail == "data.k is not valid base64"
    assert items["number"].detail == "stringData.port is not a string (quote it in YAML)"
    assert "not valid" in items["bad-key"].detail
    assert "metadata.name" in items["Bad_Name"].detail
    assert items["not-a-map"].detail == "data is not a map"
    assert "immutable" in items["frozen"].detail
    assert "never changes" in items["typed"].detail
    assert plan.exit_code(items.values()) == 2
    for value in (OLD_VALUE, NEW_VALUE):
        assert value not in repr(items)


def test_a_user_the_api_server_refuses_makes_the_plan_exit_5(
    plugin: Any, namespace: str, login_as: Any, crds: None
) -> None:
    """RBAC refuses the user, not the manifest: the items say which, and the exit code is the
    API error's, as in every other command (README's exit codes)."""
    reader = login_as([{"apiGroups": [names.GROUP], "resources": [names.PLURAL], "verbs": ["get"]}])
    manifests = yaml.safe_dump_all([instance("fresh"), secret("account", userSecret="u")])
    run = plugin(
        "plan", "-f", "-", "-n", namespace, "--kubeconfig", str(reader), "-o", "json", stdin=manifests
    )
    assert run.code == 5, run.stdout + run.stderr
    items = {i["name"]: i for i in run.json()["items"]}
    assert (items["fresh"]["action"], items["account"]["action"]) == ("error", "error")
    assert "forbidden" in items["fresh"]["detail"]  # the dry run's create
    assert "forbidden" in items["account"]["detail"]  # the stored Secret's read
