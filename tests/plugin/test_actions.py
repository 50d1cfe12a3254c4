"""The day-2 actions on the real API server, without the operator (nothing here waits for it):
what `adopt` writes, and says it wrote, when the object exists already; which of its refusals
and of the API server's are which exit code (README, "kubectl plugin": the input refused is 2,
the user refused 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from kubectl_openconnectors.errors import refused_you
from kubectl_openconnectors.names import API_VERSION, GROUP, INSTANCE_PLURAL, TAKE_OVER_ANNOTATION, VERSION
from tests.plugin.conftest import Run

Plugin = Callable[..., Run]


def manifest(**spec: Any) -> str:
    spec = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}, **spec}
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "ConnectorInstance", "spec": spec})


def adopt(plugin: Plugin, namespace: str, instance_id: int, *more: str, **spec: Any) -> Run:
    args = ("adopt", "crm", "-n", namespace, "--instance-id", str(instance_id), "-f", "-", *more)
    return plugin(*args, stdin=manifest(**spec))


def annotations(custom: client.CustomObjectsApi, namespace: str) -> dict[str, str]:
    found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "crm")
    return dict(found["metadata"].get("annotations") or {})


def test_adopt_of_an_object_that_has_this_id_already_writes_nothing_and_says_so(
    plugin: Plugin, namespace: str, custom: client.CustomObjectsApi, crd: None
) -> None:
    first = adopt(plugin, namespace, 412345, "-o", "json")
    assert first.code == 0, first.stderr
    assert first.json()["written"] == {"spec.instanceID": 412345}
    created = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "crm")

    again = adopt(plugin, namespace, 412345, "-o", "json")
    assert again.code == 0, again.stderr
    assert (again.json()["written"], again.json()["message"]) == (
        {},
        "already exists with spec.instanceID 412345: nothing written",
    )
    line = adopt(plugin, namespace, 412345).stdout
    assert line.strip().endswith("nothing written (nothing written)")
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL, "crm")
    assert stored["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_adopt_refuses_take_over_from_on_an_existing_object_and_writes_nothing(
    plugin: Plugin, namespace: str, custom: client.CustomObjectsApi, crd: None
) -> None:
    assert adopt(plugin, namespace, 412345).code == 0
    run = adopt(plugin, namespace, 412345, "--take-over-from", "0b6f3c2e-old-uid")
    assert run.code == 2, run.stderr
    assert "does not add --take-over-from to it" in run.stderr
    assert (
        f"kubectl annotate connectorinstances crm -n {namespace} "
        f"{TAKE_OVER_ANNOTATION}=0b6f3c2e-old-uid" in " ".join(run.stderr.split())
    )
    assert TAKE_OVER_ANNOTATION not in annotations(custom, namespace)
    # Another ID: refused the same way, as input the API server would refuse (instanceID is fixed).
    other = adopt(plugin, namespace, 999999)
    assert other.code == 2, other.stderr
    assert "deletionPolicy Orphan" in other.stderr


def test_a_manifest_the_api_server_refuses_is_exit_2_with_its_reason(
    plugin: Plugin, namespace: str, custom: client.CustomObjectsApi, crd: None
) -> None:
    run = adopt(plugin, namespace, 412345, resyncInterval="5s")  # the CRD's CEL rule: 422
    assert run.code == 2, run.stderr
    assert "spec.resyncInterval" in run.stderr
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, INSTANCE_PLURAL)
    assert listed["items"] == []


def test_a_user_the_api_server_refuses_is_exit_5(
    plugin: Plugin, namespace: str, login_as: Callable[..., Path], crd: None
) -> None:
    """May read ConnectorInstances, not write them: an action's patch or create is a 403."""
    assert adopt(plugin, namespace, 412345).code == 0
    reader = login_as([{"apiGroups": [GROUP], "resources": [INSTANCE_PLURAL], "verbs": ["get", "list"]}])
    for action in ("reconcile", "pause"):
        run = plugin(action, "crm", "-n", namespace, "--kubeconfig", str(reader))
        assert run.code == 5, run.stderr
        assert "forbidden" in run.stderr
    other = plugin(
        "adopt", "other", "-n", namespace, "--instance-id", "7", "-f", "-", "--kubeconfig", str(reader),
        stdin=manifest(),
    )  # fmt: skip
    assert other.code == 5, other.stderr


def test_the_rule_tells_the_user_refused_from_the_input_refused() -> None:
    """By the API server's status, and for a 403 by its words: an admission webhook's denial
    (the API server's own wording) judges the input, RBAC the user."""
    rbac = 'secrets "a" is forbidden: User "u" cannot get resource "secrets" in API group ""'
    webhook = 'admission webhook "validation.gatekeeper.sh" denied the request: [tags] required'
    assert [refused_you(s, rbac) for s in (401, 403, 429, 500, 503, None)] == [True] * 6
    assert [refused_you(s, "invalid") for s in (400, 409, 413, 422)] == [False] * 4
    assert refused_you(403, webhook) is False
