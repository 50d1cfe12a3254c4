"""The read commands and the command line's contract on the real API server, without the operator
(the status is written through the status subresource, as the operator leaves it): `status`'s
tree with accounts, token Secrets and Pods, `why` with the object's Events and a blocked
deletion, the exit codes, `-o json|yaml`, what a user without RBAC for Pods or Secrets still
gets, and that no Secret's value ever reaches the plugin."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubectl_openconnectors import kube as plugin_kube
from kubectl_openconnectors.names import FINALIZER, GROUP, INSTANCE_PLURAL, VERSION
from tests.plugin.conftest import Run

Plugin = Callable[..., Run]
NOW = "2026-01-01T00:00:00Z"


def conditions(ready: str, reason: str, **more: str) -> list[dict[str, str]]:
    found = [
        {"type": "Ready", "status": ready, "reason": reason},
        {"type": "Synced", "status": ready, "reason": reason},
    ]
    found += [{"type": t, "status": "True", "reason": r} for t, r in more.items()]
    return [{**c, "message": f"{c['type']}: {c['reason']}", "lastTransitionTime": NOW} for c in found]


def put_instance(
    custom: client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorInstance",
        "metadata": {"name": name},
        "spec": {"connectorKey": "closeio", **spec},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, body)
    result: dict[str, Any] = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, INSTANCE_PLURAL, name, {"status": status}
    )
    return result


def put_cluster_account(custom: client.CustomObjectsApi, name: str, ready: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterConnectorAccount",
        "metadata": {"name": name},
        "spec": {"credentialsSecretRef": {"name": "platform", "namespace": "nowhere"}},
    }
    custom.create_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", body)
    reason = "Healthy" if ready == "True" else "CircuitOpen"
    status = {
        "conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "message": "", "lastTransitionTime": NOW}
        ]
    }
    custom.patch_cluster_custom_object_status(
        GROUP, VERSION, "clusterconnectoraccounts", name, {"status": status}
    )


def token_secret(
    core: client.CoreV1Api, namespace: str, name: str, value: str = "token-value-never-shown"
) -> None:
    labels = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data={"token": value}),
    )


def pod_using(core: client.CoreV1Api, namespace: str, name: str, secret: str) -> None:
    """A Pod reading the Secret into its environment (no kubelet runs: it stays Pending)."""
    container = client.V1Container(
        name="app",
        image="shop",
        env_from=[client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=secret))],
    )
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(containers=[container])),
    )


@pytest.fixture
def shop(core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, crd: None) -> str:
    """A namespace as the operator would leave it: one instance Ready through a cluster account,
    its token Secret read by a Pod, and one instance with its own credentials, stalled."""
    # No controller-manager: the namespace's default ServiceAccount, which Pods need, is made here.
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
    )
    account = f"shared-{uuid.uuid4().hex[:6]}"
    put_cluster_account(custom, account, "True")
    ready = {
        "conditions": conditions("True", "Available"),
        "instanceID": 41,
        "account": f"ClusterConnectorAccount/{account}",
        "tokenSecretName": "crm-token",
    }
    put_instance(
        custom, namespace, "crm", {"accountRef": {"kind": "ClusterConnectorAccount", "name": account}}, ready
    )
    token_secret(core, namespace, "crm-token")
    pod_using(core, namespace, "shop-1", "crm-token")
    rejected = {
        "conditions": conditions("False", "CredentialsRejected", Stalled="CredentialsRejected"),
        "account": "Secret/oc-account",
    }
    put_instance(custom, namespace, "broken", {"credentialsSecretRef": {"name": "oc-account"}}, rejected)
    return account


def test_status_shows_the_tree_and_exits_1_while_something_is_not_ready(
    plugin: Plugin, shop: str, namespace: str
) -> None:
    run = plugin("status", "-n", namespace)
    assert run.code == 1, run.stderr
    lines = [line.split() for line in run.stdout.splitlines()]
    assert lines[0] == ["NAME", "READY", "SYNCED", "REASON", "AGE", "DETAIL"]
    assert lines[1][:4] == ["ClusterConnectorAccount", shop, "True", "Healthy"]
    assert lines[2][:6] == ["└─", "ConnectorInstance", f"{namespace}/crm", "True", "True", "Available"]
    assert lines[3][:3] == ["└─", "Secret", f"{namespace}/crm-token"]
    assert lines[4][:5] == ["└─", "Pod", f"{namespace}/shop-1", "Unknown", "Pending"]  # no kubelet runs it
    assert lines[4][-1] == "envFrom"
    assert lines[5][:3] == ["own", "credentials", "(spec.credentialsSecretRef)"]
    assert lines[6][:6] == [
        "└─",
        "ConnectorInstance",
        f"{namespace}/broken",
        "False",
        "False",
        "CredentialsRejected",
    ]
    assert lines[7][:4] == ["└─", "Secret", f"{namespace}/broken-token", "NotFound"]
    assert "token-value-never-shown" not in run.stdout


def test_status_json_and_yaml_and_exit_0_when_all_is_ready(
    plugin: Plugin, shop: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    data = plugin("status", "-n", namespace, "-o", "json").json()
    assert data["namespace"] == namespace
    assert data["notes"] == []
    [account, own] = data["items"]
    assert (account["kind"], account["name"], account["children"][0]["name"]) == (
        "ClusterConnectorAccount",
        shop,
        "crm",
    )
    assert account["children"][0]["children"][0]["children"][0] | {"created": ""} == {
        "kind": "Pod", "namespace": namespace, "name": "shop-1", "ready": "Unknown", "synced": "",
        "reason": "Pending", "created": "", "detail": "envFrom", "children": [],
    }  # fmt: skip
    assert own["kind"] == "Credentials"
    assert yaml.safe_load(plugin("status", "-n", namespace, "-o", "yaml").stdout) == data
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "broken")
    assert plugin("status", "-n", namespace).code == 0


def test_status_of_every_namespace_shows_unused_cluster_accounts(
    plugin: Plugin, shop: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    idle = f"idle-{uuid.uuid4().hex[:6]}"
    put_cluster_account(custom, idle, "False")
    everything = plugin("status", "-A", "-o", "json")
    tops = {(n["kind"], n["name"]) for n in everything.json()["items"]}
    assert {("ClusterConnectorAccount", shop), ("ClusterConnectorAccount", idle)} <= tops
    assert everything.code == 1
    mine = {(n["kind"], n["name"]) for n in plugin("status", "-n", namespace, "-o", "json").json()["items"]}
    assert ("ClusterConnectorAccount", idle) not in mine


def test_why_shows_conditions_and_the_latest_events_of_this_object(
    plugin: Plugin, shop: str, namespace: str, core: client.CoreV1Api, custom: client.CustomObjectsApi
) -> None:
    broken = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "broken")
    for minute in range(12):
        post_event(core, namespace, broken, f"Step{minute:02d}", f"2026-01-01T10:{minute:02d}:00Z")
    other = dict(broken, metadata={**broken["metadata"], "uid": str(uuid.uuid4())})  # an earlier "broken"
    post_event(core, namespace, other, "OfAnotherObject", "2026-01-01T11:00:00Z")
    run = plugin("why", "broken", "-n", namespace, "--events", "3")
    assert run.code == 1, run.stderr
    assert f"ConnectorInstance {namespace}/broken" in run.stdout
    assert "Ready:          False (CredentialsRejected)" in run.stdout
    rows = run.stdout.split("Conditions:\n")[1].split("\n\n")[0].splitlines()
    assert [row.split()[:3] for row in rows] == [
        ["TYPE", "STATUS", "REASON"],
        ["Ready", "False", "CredentialsRejected"],
        ["Synced", "False", "CredentialsRejected"],
        ["Stalled", "True", "CredentialsRejected"],
    ]
    assert rows[3].endswith("Stalled: CredentialsRejected")  # the message
    events = run.stdout.split("Events (the last 3):")[1]
    assert [line.split()[2] for line in events.strip().splitlines()[1:]] == ["Step09", "Step10", "Step11"]
    assert "OfAnotherObject" not in run.stdout
    data = plugin("why", "broken", "-n", namespace, "-o", "json").json()
    assert len(data["events"]) == 10
    assert data["account"] == "Secret/oc-account"
    assert plugin("why", "crm", "-n", namespace).code == 0


def post_event(core: client.CoreV1Api, namespace: str, about: dict[str, Any], reason: str, at: str) -> None:
    meta = about["metadata"]
    involved = client.V1ObjectReference(
        api_version=f"{GROUP}/{VERSION}",
        kind="ConnectorInstance",
        name=meta["name"],
        namespace=namespace,
        uid=meta["uid"],
    )
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="plugin-test-"),
        involved_object=involved,
        reason=reason,
        message=f"{reason} happened",
        type="Normal",
        count=1,
        first_timestamp=at,
        last_timestamp=at,
        source=client.V1EventSource(component="open-connectors-operator"),
    )
    core.create_namespaced_event(namespace, event)


def test_why_names_the_command_that_releases_a_blocked_deletion(
    plugin: Plugin, namespace: str, custom: client.CustomObjectsApi, crd: None
) -> None:
    status = {"conditions": conditions("False", "DeletionBlocked", Stalled="DeletionBlocked")}
    put_instance(custom, namespace, "stuck", {"credentialsSecretRef": {"name": "gone"}}, status)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, INSTANCE_PLURAL, "stuck", {"metadata": {"finalizers": [FINALIZER]}}
    )
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "stuck")
    try:
        run = plugin("why", "stuck", "-n", namespace)
        orphan = """'{"spec":{"deletionPolicy":"Orphan"}}'"""
        command = f"kubectl patch connectorinstances stuck -n {namespace} --type merge -p {orphan}"
        assert run.code == 1
        assert (
            "Deletion blocked. To release the object and leave the remote instance on the platform:\n"
            f"  {command}" in run.stdout
        )
        assert "Deleting:       yes" in run.stdout
    finally:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, INSTANCE_PLURAL, "stuck", {"metadata": {"finalizers": None}}
        )


def test_exit_codes_for_usage_not_found_and_an_unreachable_api(
    plugin: Plugin, namespace: str, tmp_path: Any
) -> None:
    missing = plugin("why", "nothing-here", "-n", namespace)
    assert (missing.code, missing.stdout) == (3, "")
    assert f'"nothing-here" not found in namespace {namespace}' in missing.stderr
    assert plugin("status", "-n", namespace, "-A").code == 2
    assert plugin("status", "-o", "xml").code == 2
    assert plugin("adopt", "x", "-n", namespace).code == 2  # --instance-id and -f are required
    assert plugin("reconcile", "nothing-here", "-n", namespace).code == 3
    # A name that is no name: one path segment all the same, and not found (no traceback).
    for odd in ("a/../../secrets", "bad\x1b[2Kname"):
        run = plugin("why", odd, "-n", namespace)
        assert run.code == 3, run.stderr
        assert "Traceback" not in run.stderr
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(unreachable_kubeconfig()))
    run = plugin("status", "-n", namespace, "--kubeconfig", str(kubeconfig))
    assert run.code == 5, run.stderr
    assert "cannot reach the Kubernetes API" in run.stderr


def unreachable_kubeconfig() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


def test_without_rbac_for_pods_and_secrets_the_tree_says_so_and_stays(
    plugin: Plugin, shop: str, namespace: str, login_as: Callable[..., Path]
) -> None:
    """A user who may read ConnectorInstances and accounts, and no Secret or Pod."""
    resources = ["connectorinstances", "connectoraccounts", "clusterconnectoraccounts"]
    kubeconfig = login_as([{"apiGroups": [GROUP], "resources": resources, "verbs": ["get", "list"]}])
    run = plugin("status", "-n", namespace, "--kubeconfig", str(kubeconfig), "-o", "json")
    data = run.json()
    assert [n.split(":")[0] for n in data["notes"]] == ["token Secrets not shown", "Pods not shown"]
    token_node = data["items"][0]["children"][0]["children"][0]
    assert (token_node["name"], token_node["reason"], token_node["children"]) == ("crm-token", "", [])
    table = plugin("status", "-n", namespace, "--kubeconfig", str(kubeconfig))
    assert "note: Pods not shown: " in table.stderr
    assert "forbidden" in table.stderr


def test_no_secret_value_reaches_the_plugin(
    plugin: Plugin, shop: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer the plugin gets about Secrets is metadata: recorded at its one door to the API."""
    answers: list[tuple[str, Any]] = []
    call = plugin_kube.Kube._call

    def recording(self: plugin_kube.Kube, method: str, path: str, **kwargs: Any) -> Any:
        answer = call(self, method, path, **kwargs)
        answers.append((path, answer))
        return answer

    monkeypatch.setattr(plugin_kube.Kube, "_call", recording)
    assert plugin("status", "-n", namespace).code == 1
    assert plugin("why", "crm", "-n", namespace).code == 0
    secrets = [answer for path, answer in answers if "/secrets" in path]
    assert secrets, answers
    for answer in secrets:
        assert answer["kind"] == "PartialObjectMetadataList"
        assert all(
            set(item) == {"kind", "apiVersion", "metadata"} or set(item) <= {"metadata"}
            for item in answer["items"]
        )
    assert "token-value-never-shown" not in repr(answers)
    assert "dG9rZW4tdmFsdWUtbmV2ZXItc2hvd24" not in repr(answers)  # nor base64


def test_wait_times_out_with_exit_4_when_no_operator_handles_it(
    plugin: Plugin, shop: str, namespace: str
) -> None:
    run = plugin("pause", "crm", "-n", namespace, "--wait", "--timeout", "1", "-o", "json")
    assert run.code == 4, run.stderr
    data = run.json()
    assert (data["result"], data["written"]) == ("timeout", {"openconnectors.io/paused": "true"})
    assert data["seconds"] >= 1


def test_text_a_tenant_wrote_reaches_the_terminal_escaped_and_bounded(
    plugin: Plugin, namespace: str, core: client.CoreV1Api, custom: client.CustomObjectsApi, crd: None
) -> None:
    """Escape sequences (an erase-and-move-up that hides the row above, an OSC 52 clipboard write),
    a bidi override and a 1 MB reason, stored by the API server in a status and an Event, come out
    of `status` and `why` visible and inert, each row bounded; YAML escapes them by itself."""
    hide, clipboard, huge = "\x1b[2K\x1b[1A", "\x1b]52;c;AAAA\x07", "R" * 1_000_000
    said = [("Ready", "False", huge, "m"), ("Synced", "True", "Ok", clipboard)]
    status = {
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": NOW}
            for t, s, r, m in said
        ],
        "account": f"Secret/{clipboard}\u202egnp.exe",
    }
    hostile = put_instance(custom, namespace, "hostile", {"credentialsSecretRef": {"name": "a"}}, status)
    post_event(core, namespace, hostile, "Hidden" + hide, NOW)

    tree, report = plugin("status", "-n", namespace), plugin("why", "hostile", "-n", namespace)
    for run in (tree, report):
        assert run.code == 1, run.stderr
        shown = {c for c in run.stdout if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")}
        assert shown == set()
        assert max(len(line) for line in run.stdout.splitlines()) < 3000
    assert "Secret/\\x1b]52;c;AAAA\\x07\\u202egnp.exe" in tree.stdout
    assert "Hidden\\x1b[2K\\x1b[1A happened" in report.stdout  # the Event's message
    raw = plugin("why", "hostile", "-n", namespace, "-o", "yaml").stdout
    assert not {c for c in raw if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")}
    assert yaml.safe_load(raw)["account"] == status["account"]
