"""Building blocks of the lifecycle tests: the Secrets and specs a user would write."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from connector_operator.api.names import GROUP, VERSION
from connector_operator.openconnectors.budget import Budget
from tests.fixtures.operator import Instances, OperatorProcess
from tests.fixtures.simulator import SimulatorHandle

CLOSEIO_API_KEY = "closeio-key-7f3a9c1e5b2d4f60"
ACCOUNT = "oc-account"
CLOSEIO_SECRET = "closeio-api"
ACCOUNT_SECRET = "platform-account"  # a platform team's, for its accounts (issue 10)


def put_secret(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise
        current = core.read_namespaced_secret(name, namespace)
        current.data = None
        current.string_data = data
        core.replace_namespaced_secret(name, namespace, current)


def secret_data(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str] | None:
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def account_values(simulator: SimulatorHandle) -> dict[str, str]:
    return {"userSecret": simulator.user_secret, "organizationSecret": simulator.organization_secret}


def account_secret(core: client.CoreV1Api, namespace: str, simulator: SimulatorHandle) -> None:
    put_secret(core, namespace, ACCOUNT, account_values(simulator))


def closeio_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": ACCOUNT},
        "tags": ["crm"],
        "configuration": [
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": CLOSEIO_SECRET, "key": "apiKey"}}},
            {"key": "pagination.max", "value": "50"},
        ],
    }
    spec.update(overrides)
    return spec


def hand_made(name: str) -> dict[str, Any]:
    """The body of an instance created outside Kubernetes, as in the Open Connectors UI."""
    return {
        "name": name,
        "element": {"key": "closeio"},
        "tags": ["by-hand"],
        "configuration": {"username": CLOSEIO_API_KEY, "pagination.max": "50"},
    }


def instance_spec(**fields: Any) -> dict[str, Any]:
    """A spec that names no credentials of its own: its account's (`accountRef`, or the default)."""
    return {
        "connectorKey": "closeio",
        "configuration": [
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": CLOSEIO_SECRET, "key": "apiKey"}}}
        ],
        **fields,
    }


TEAM_ACCOUNT, TEAM_ACCOUNT_SECRET = "team", "team-account"


def team_account(env: Env, custom: client.CustomObjectsApi, budget: dict[str, Any] | None) -> None:
    """A ConnectorAccount `team` in the test's namespace, its Secret holding the simulator's
    account secrets, with `budget` as its requestBudget if given."""
    put_secret(env.core, env.namespace, TEAM_ACCOUNT_SECRET, account_values(env.simulator))
    spec: dict[str, Any] = {"credentialsSecretRef": {"name": TEAM_ACCOUNT_SECRET}}
    if budget is not None:
        spec["requestBudget"] = budget
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorAccount",
        "metadata": {"name": TEAM_ACCOUNT},
        "spec": spec,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, env.namespace, "connectoraccounts", body)


def team_instance_spec() -> dict[str, Any]:
    """A Close.io instance of the `team` account."""
    return instance_spec(accountRef={"kind": "ConnectorAccount", "name": TEAM_ACCOUNT})


def cluster_account(
    custom: client.CustomObjectsApi,
    name: str,
    secret_namespace: str,
    selects: str | list[str],
    secret: str = ACCOUNT_SECRET,
    budget: dict[str, Any] | None = None,
) -> None:
    """A ClusterConnectorAccount for the namespaces `selects` (the tests' fixtures delete it), with
    `budget` as its requestBudget if given."""
    names = [selects] if isinstance(selects, str) else selects
    spec: dict[str, Any] = {
        "credentialsSecretRef": {"name": secret, "namespace": secret_namespace},
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]
        },
    }
    if budget is not None:
        spec["requestBudget"] = budget
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterConnectorAccount",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom.create_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", body)


def ready_inputs(core: client.CoreV1Api, namespace: str, simulator: SimulatorHandle) -> None:
    account_secret(core, namespace, simulator)
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})


def remote(simulator: SimulatorHandle, instance_id: int) -> dict[str, Any]:
    return next(i for i in simulator.control.instances() if i["id"] == instance_id)


def remotes_for(simulator: SimulatorHandle, uid: str) -> list[dict[str, Any]]:
    return [i for i in simulator.control.instances() if f"k8s-uid:{uid}" in (i.get("tags") or [])]


def create_ready(
    instances: Instances, core: client.CoreV1Api, namespace: str, simulator: SimulatorHandle, **spec: Any
) -> dict[str, Any]:
    """The inputs, a Close.io ConnectorInstance named `crm`, and the object once it is Ready."""
    ready_inputs(core, namespace, simulator)
    instances.create("crm", closeio_spec(**spec))
    return instances.wait_ready("crm")


@dataclass
class Env:
    """What an integration test works in: its namespace with the CRD, the session's simulator, and
    the operator (started for it, unless the test is marked `manual_operator` and starts its own)."""

    instances: Instances
    core: client.CoreV1Api
    namespace: str
    simulator: SimulatorHandle
    start_operator: Callable[..., OperatorProcess]
    operator: OperatorProcess | None = None

    def ready_inputs(self) -> None:
        ready_inputs(self.core, self.namespace, self.simulator)

    def create_ready(self, **spec: Any) -> dict[str, Any]:
        return create_ready(self.instances, self.core, self.namespace, self.simulator, **spec)


def apiserver_metric(api_client: client.ApiClient, name: str, **labels: str) -> int:
    """The sum of the API server's own metric `name` over the samples with `labels`."""
    response = api_client.call_api("/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False)
    total = 0.0
    for family in text_string_to_metric_families(response.data.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return int(total)


def apiserver_requests(api_client: client.ApiClient, verb: str, resource: str) -> int:
    """Requests the API server has answered for `verb` on `resource` (all namespaces, all clients)."""
    return apiserver_metric(api_client, "apiserver_request_total", verb=verb, resource=resource)


def densest_window_excess(times: list[float], budget: Budget, jitter: float = 0.1) -> float:
    """How far the densest stretch of arrivals exceeds a token bucket's promise, `burst + rate * t`
    (with `jitter` seconds of slack for clocks): positive means the budget was broken."""
    worst = float("-inf")
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = budget.burst + budget.requests_per_second * (times[j] - start + jitter)
            worst = max(worst, (j - i + 1) - allowed)
    return worst
