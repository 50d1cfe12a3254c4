"""The ConnectorAccount and ClusterConnectorAccount CRDs on a real API server.

What a platform team's `kubectl apply` of an account is refused for, with a readable message: a
cluster account's credentials Secret without its namespace, a namespaced account's Secret with one
(declared only to be refused, so that it is not pruned silently), request budgets out of bounds
(requestsPerSecond > 0 and at most 1000, burst and maxInFlight at least 1), malformed
namespace selectors (In/NotIn without values, Exists with values, unknown operators, label keys
and values Kubernetes would not accept) and an empty allowedConnectors list; and what is accepted
and stored exactly as written: full specs of both kinds with no server-side defaults (a
fractional rate included), and the status subresource the operator writes, with its one default
(observedGeneration 0, so that kstatus does not read a new account as Current). The platform-team
and application-team examples (examples/accounts/) pass a server-side dry run as written.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api import names
from hack.controlplane.cluster import ControlPlane

pytestmark = pytest.mark.usefixtures("api_crds")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "accounts"

API_URL = "https://api.openconnectors.eu10.ext.hana.ondemand.com/elements/api-v2"
BUDGET = {"requestsPerSecond": 5, "burst": 10, "maxInFlight": 4}
CLUSTER_SPEC: dict[str, Any] = {
    "apiURL": API_URL,
    "credentialsSecretRef": {"name": "oc-platform", "namespace": "open-connectors-operator"},
    "requestBudget": BUDGET,
    "namespaceSelector": {
        "matchLabels": {"openconnectors.io/team": "sales"},
        "matchExpressions": [
            {"key": "environment", "operator": "In", "values": ["dev", "prod"]},
            {"key": "example.com/frozen", "operator": "DoesNotExist"},
        ],
    },
    "allowedConnectors": ["closeio", "hubspot"],
}
NAMESPACED_SPEC: dict[str, Any] = {
    "apiURL": API_URL,
    "credentialsSecretRef": {"name": "oc-team"},
    "requestBudget": {"requestsPerSecond": 0.5, "burst": 1, "maxInFlight": 1},
}


def body(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": kind,
        "metadata": {"name": f"ci-{uuid.uuid4().hex[:8]}"},
        "spec": spec,
    }


def create(
    custom: client.CustomObjectsApi, namespace: str, kind: str, spec: dict[str, Any]
) -> dict[str, Any]:
    created: dict[str, Any]
    if kind == names.CLUSTER_ACCOUNT_KIND:
        created = custom.create_cluster_custom_object(
            names.GROUP, names.VERSION, names.CLUSTER_ACCOUNT_PLURAL, body(kind, spec)
        )
    else:
        created = custom.create_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.ACCOUNT_PLURAL, body(kind, spec)
        )
    return created


def with_change(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `spec` with the dotted `path` set to `value` (None removes it)."""
    changed = json.loads(json.dumps(spec))
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return changed


CLUSTER_REJECTED = [
    pytest.param(
        "credentialsSecretRef",
        {"name": "oc-platform"},
        ["spec.credentialsSecretRef.namespace", "Required value"],
        id="secret-without-namespace",
    ),
    pytest.param(
        "credentialsSecretRef.namespace",
        "Not.A.Namespace",
        ["spec.credentialsSecretRef.namespace", "should match"],
        id="secret-namespace-not-a-label",
    ),
    pytest.param(
        "credentialsSecretRef", None, ["spec.credentialsSecretRef", "Required value"], id="no-secret"
    ),
    pytest.param(
        "requestBudget.requestsPerSecond",
        0,
        ["spec.requestBudget.requestsPerSecond", "should be greater than 0"],
        id="rate-zero",
    ),
    pytest.param(
        "requestBudget.requestsPerSecond",
        -1,
        ["spec.requestBudget.requestsPerSecond", "should be greater than 0"],
        id="rate-negative",
    ),
    pytest.param(
        "requestBudget.requestsPerSecond",
        1000.5,
        ["spec.requestBudget.requestsPerSecond", "should be less than or equal to 1000"],
        id="rate-too-high",
    ),
    pytest.param(
        "requestBudget.burst",
        0,
        ["spec.requestBudget.burst", "should be greater than or equal to 1"],
        id="burst-0",
    ),
    pytest.param(
        "requestBudget.burst",
        10001,
        ["spec.requestBudget.burst", "should be less than or equal to 10000"],
        id="burst-too-high",
    ),
    pytest.param(
        "requestBudget.burst",
        2.5,
        ["spec.requestBudget.burst", "must be of type integer"],
        id="burst-fractional",
    ),
    pytest.param(
        "requestBudget.maxInFlight",
        0,
        ["spec.requestBudget.maxInFlight", "should be greater than or equal to 1"],
        id="maxInFlight-0",
    ),
    pytest.param(
        "requestBudget.maxInFlight",
        1001,
        ["spec.requestBudget.maxInFlight", "should be less than or equal to 1000"],
        id="maxInFlight-too-high",
    ),
    pytest.param(
        "requestBudget",
        {"requestsPerSecond": 5},
        ["spec.requestBudget.burst", "spec.requestBudget.maxInFlight", "Required value"],
        id="budget-incomplete",
    ),
    pytest.param(
        "namespaceSelector.matchExpressions",
        [{"key": "team", "operator": "In"}],
        ["spec.namespaceSelector.matchExpressions[0].values", "values must be non-empty for In and NotIn"],
        id="selector-In-without-values",
    ),
    pytest.param(
        "namespaceSelector.matchExpressions",
        [{"key": "team", "operator": "NotIn", "values": []}],
        ["spec.namespaceSelector.matchExpressions[0].values", "values must be non-empty for In and NotIn"],
        id="selector-NotIn-empty-values",
    ),
    pytest.param(
        "namespaceSelector.matchExpressions",
        [{"key": "team", "operator": "Exists", "values": ["sales"]}],
        ["spec.namespaceSelector.matchExpressions[0].values", "absent for Exists and DoesNotExist"],
        id="selector-Exists-with-values",
    ),
    pytest.param(
        "namespaceSelector.matchExpressions",
        [{"key": "team", "operator": "Matches", "values": ["s.*"]}],
        ["spec.namespaceSelector.matchExpressions[0].operator", 'Unsupported value: "Matches"'],
        id="selector-unknown-operator",
    ),
    pytest.param(
        "namespaceSelector.matchExpressions",
        [{"key": "bad key", "operator": "Exists"}],
        ["spec.namespaceSelector.matchExpressions[0].key", "should match"],
        id="selector-bad-key",
    ),
    pytest.param(
        "namespaceSelector.matchLabels",
        {"team": "not a value"},
        ["spec.namespaceSelector.matchLabels.team", "should match"],
        id="selector-bad-label-value",
    ),
    pytest.param(
        "namespaceSelector.matchLabels",
        {"-team": "sales"},
        ["spec.namespaceSelector.matchLabels", "matchLabels keys must be label keys"],
        id="selector-bad-label-key",
    ),
    pytest.param(
        "allowedConnectors",
        [],
        ["spec.allowedConnectors", "should have at least 1 items"],
        id="allowed-empty",
    ),
    pytest.param(
        "allowedConnectors", ["CloseIO"], ["spec.allowedConnectors[0]", "should match"], id="allowed-bad-key"
    ),
    pytest.param(
        "apiURL",
        "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2?x=1",
        ["spec.apiURL", "should match"],
        id="apiURL-with-query",
    ),
]


def rejection(custom: client.CustomObjectsApi, namespace: str, kind: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as refused:
        create(custom, namespace, kind, spec)
    assert refused.value.status == 422, refused.value.body
    message: str = json.loads(refused.value.body)["message"]
    return message


@pytest.mark.parametrize(("path", "value", "fragments"), CLUSTER_REJECTED)
def test_cluster_account_refused_with_a_readable_message(
    custom: client.CustomObjectsApi, namespace: str, path: str, value: Any, fragments: list[str]
) -> None:
    message = rejection(custom, namespace, names.CLUSTER_ACCOUNT_KIND, with_change(CLUSTER_SPEC, path, value))
    for fragment in fragments:
        assert fragment in message


def test_a_namespaced_account_reads_only_its_own_namespace(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    spec = with_change(NAMESPACED_SPEC, "credentialsSecretRef.namespace", "open-connectors-operator")
    message = rejection(custom, namespace, names.ACCOUNT_KIND, spec)
    assert "spec.credentialsSecretRef.namespace" in message
    assert "a Secret of another namespace needs a ClusterConnectorAccount" in message


@pytest.mark.parametrize(
    ("path", "value", "fragments"),
    [
        pytest.param(
            "requestBudget.requestsPerSecond",
            0,
            ["spec.requestBudget.requestsPerSecond", "should be greater than 0"],
            id="rate-zero",
        ),
        # The cluster kind's fields are not the namespaced kind's: pruned, so stored without them.
        pytest.param(
            "credentialsSecretRef.name", "", ["spec.credentialsSecretRef.name"], id="secret-name-empty"
        ),
    ],
)
def test_namespaced_account_refused_with_a_readable_message(
    custom: client.CustomObjectsApi, namespace: str, path: str, value: Any, fragments: list[str]
) -> None:
    message = rejection(custom, namespace, names.ACCOUNT_KIND, with_change(NAMESPACED_SPEC, path, value))
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("kind", "spec"),
    [
        pytest.param(names.CLUSTER_ACCOUNT_KIND, CLUSTER_SPEC, id="cluster-full"),
        pytest.param(
            names.CLUSTER_ACCOUNT_KIND,
            {"credentialsSecretRef": CLUSTER_SPEC["credentialsSecretRef"]},
            id="cluster-minimal",
        ),
        pytest.param(
            names.CLUSTER_ACCOUNT_KIND,
            {**CLUSTER_SPEC, "namespaceSelector": {}},
            id="cluster-empty-selector-selects-nothing",
        ),
        pytest.param(names.ACCOUNT_KIND, NAMESPACED_SPEC, id="namespaced-fractional-rate"),
        pytest.param(
            names.ACCOUNT_KIND, {"credentialsSecretRef": {"name": "oc-team"}}, id="namespaced-minimal"
        ),
    ],
)
def test_valid_accounts_are_stored_as_written(
    custom: client.CustomObjectsApi, namespace: str, kind: str, spec: dict[str, Any]
) -> None:
    created = create(custom, namespace, kind, spec)
    assert created["spec"] == spec  # nothing pruned, no default added
    assert created["status"] == {"observedGeneration": 0}


def test_the_namespaced_account_has_no_cluster_only_fields(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    # Who may use a ConnectorAccount is its namespace: a selector there would mean nothing.
    created = create(
        custom,
        namespace,
        names.ACCOUNT_KIND,
        {
            **NAMESPACED_SPEC,
            "namespaceSelector": {"matchLabels": {"a": "b"}},
            "allowedConnectors": ["closeio"],
        },
    )
    assert created["spec"] == NAMESPACED_SPEC


def test_the_operator_writes_status_through_the_subresource(custom: client.CustomObjectsApi) -> None:
    created = create(custom, "", names.CLUSTER_ACCOUNT_KIND, CLUSTER_SPEC)
    name = created["metadata"]["name"]
    status = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "CircuitOpen",
                "message": "5 server errors in a row",
                "lastTransitionTime": "2026-03-02T09:00:00Z",
            }
        ],
        "instances": 2,
        "usedBy": ["sales/acme-closeio", "crm/hubspot"],
        "budget": {"requestsPerSecond": 5, "burst": 10, "maxInFlight": 4, "available": 2.5, "inFlight": 1},
        "circuit": {"state": "Open", "consecutiveFailures": 5, "openedAt": "2026-03-02T09:00:00Z"},
    }
    patched = custom.patch_cluster_custom_object_status(
        names.GROUP, names.VERSION, names.CLUSTER_ACCOUNT_PLURAL, name, {"status": status}
    )
    assert patched["status"] == status
    assert patched["spec"] == CLUSTER_SPEC


def test_the_account_examples_pass_server_side_dry_run(
    control_plane: ControlPlane, core: client.CoreV1Api
) -> None:
    documents = [d for f in sorted(EXAMPLES.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    assert {d["kind"] for d in documents} == {
        "Namespace",
        "Secret",
        names.CLUSTER_ACCOUNT_KIND,
        names.KIND,
    }
    # A dry run creates nothing, so the namespaces the objects live in must exist for real.
    for namespace in {d["metadata"]["namespace"] for d in documents if "namespace" in d["metadata"]}:
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        except ApiException as error:
            if error.status != 409:
                raise
    result = subprocess.run(
        [
            "kubectl",
            f"--kubeconfig={control_plane.kubeconfig}",
            "apply",
            "--dry-run=server",
            "-f",
            str(EXAMPLES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(documents)
