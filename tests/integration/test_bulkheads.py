"""One tenant's trouble never starves, blocks or restarts the others (issue 9, findings 4, 5, 11).

- Finding 5: objects waiting for Secrets that do not exist yet (GitOps applies objects first)
  each held a pooled Kubernetes connection in a watch; 400 of them starved everyone. Now they share
  one watch per namespace: the operator's connections to the API server stay few, another
  namespace's object becomes Ready within 10 s, and a waiting object still reacts to its Secret.
- Finding 4 (the request): a 1 MB Secret value referenced 200 times built a 208 MB request. Now
  the resolved configuration is capped: `Stalled` with `InvalidSpec`, no request, little memory.
- Finding 11 (the status write): a status patch the API server refused crashed the daemon, kopf
  restarted it every 5 s and each restart called the platform again. Now a failed status write
  is an outcome like any other: backoff, no repeated platform call, written once it is accepted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fixtures.operator import Instances, wait_until
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    account_secret,
    apiserver_metric,
    closeio_spec,
    put_secret,
)

CHART_MEMORY_LIMIT_MIB = 384
WAITING = 150  # more than the operator's 100 pooled Kubernetes connections


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak resident set, not just the current one
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def secret_watches(api_client: client.ApiClient) -> int:
    """Watches of Secrets the API server is serving now, from its own metrics."""
    return apiserver_metric(api_client, "apiserver_longrunning_requests", verb="WATCH", resource="secrets")


def waiting_count(instances: Instances) -> int:
    listed = instances.custom.list_namespaced_custom_object(
        "openconnectors.io", "v1beta1", instances.namespace, "connectorinstances"
    )
    return sum(
        1
        for item in listed["items"]
        for condition in (item.get("status") or {}).get("conditions") or []
        if condition["type"] == "Reconciling" and condition.get("reason") == "WaitingForSecret"
    )


@pytest.mark.manual_operator
def test_objects_waiting_for_secrets_starve_no_one(
    env: Env, other_namespace: str, api_client: client.ApiClient
) -> None:
    operator = env.start_operator("--namespace", other_namespace)
    account_secret(env.core, env.namespace, env.simulator)
    for index in range(WAITING):
        spec = closeio_spec(
            configuration=[
                {
                    "key": "username",
                    "valueFrom": {"secretKeyRef": {"name": f"later-{index}", "key": "apiKey"}},
                }
            ]
        )
        env.instances.create(f"waiting-{index}", spec)
    wait_until(lambda: waiting_count(env.instances) == WAITING, timeout=60, what="all objects waiting")

    # While everyone waits: one shared watch (beside kopf's two label-filtered ones), not a watch
    # and a pooled connection per waiting object, as before (up to the pool's 100).
    # (The API server counts every watch of Secrets in the cluster, and the operator is the only
    # client watching them now. 96 before.)
    watches = secret_watches(api_client)
    assert watches <= 4, f"{watches} Secret watches while {WAITING} objects wait"

    other = Instances(api_client, other_namespace)
    account_secret(env.core, other_namespace, env.simulator)
    put_secret(env.core, other_namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    started = time.monotonic()
    other.create("crm", closeio_spec())
    other.wait_ready("crm", timeout=10)
    assert time.monotonic() - started < 10

    # The waiting objects still hear of their Secret at once: the shared watch wakes exactly them.
    put_secret(env.core, env.namespace, "later-7", {"apiKey": CLOSEIO_API_KEY})
    env.instances.wait_ready("waiting-7", timeout=10)
    assert operator.process is not None
    assert rss_mib(operator.process.pid) < CHART_MEMORY_LIMIT_MIB


def test_a_huge_resolved_configuration_is_refused_before_any_request(env: Env) -> None:
    account_secret(env.core, env.namespace, env.simulator)
    put_secret(env.core, env.namespace, "big", {"blob": "x" * 1_000_000})
    entries = [
        {"key": f"key{index}", "valueFrom": {"secretKeyRef": {"name": "big", "key": "blob"}}}
        for index in range(200)
    ]
    env.instances.create("huge", closeio_spec(configuration=entries))
    stalled = env.instances.wait_condition("huge", "Stalled", "True", reason="InvalidSpec")
    assert "'key0' is 1000000 bytes" in stalled["message"]
    assert env.simulator.control.counters().get("POST /instances", 0) == 0
    assert env.operator is not None
    assert env.operator.process is not None
    assert rss_mib(env.operator.process.pid) < CHART_MEMORY_LIMIT_MIB

    # Within the bounds it goes through: the cap is on size, not on the feature.
    put_secret(env.core, env.namespace, "big", {"blob": "small"})
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.patch_spec("huge", closeio_spec(configuration=[*entries[:3], _username()]))
    env.instances.wait_ready("huge", timeout=15)


def _username() -> dict[str, Any]:
    return {"key": "username", "valueFrom": {"secretKeyRef": {"name": CLOSEIO_SECRET, "key": "apiKey"}}}


@contextlib.contextmanager
def status_writes_refused(api_client: client.ApiClient, namespace: str) -> Iterator[None]:
    """A ValidatingAdmissionPolicy that refuses every status write to ConnectorInstances of
    `namespace`: the API server answers the operator's status patch with an error."""
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"refuse-status-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["openconnectors.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["connectorinstances/status"],
                    }
                ]
            },
            "validations": [{"expression": "false", "message": "status writes are refused in this test"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    admission.create_validating_admission_policy(policy)
    admission.create_validating_admission_policy_binding(binding)
    try:
        yield
    finally:
        for delete in (
            admission.delete_validating_admission_policy_binding,
            admission.delete_validating_admission_policy,
        ):
            with contextlib.suppress(ApiException):
                delete(name)


def test_a_refused_status_write_is_retried_quietly_and_lands_later(
    env: Env, api_client: client.ApiClient, custom: client.CustomObjectsApi
) -> None:
    env.ready_inputs()
    with status_writes_refused(api_client, env.namespace):
        probe = {"status": {"observedGeneration": 0}}
        # The policy takes effect within a moment: wait until a status write is refused.
        env.instances.create("probe", closeio_spec(credentialsSecretRef={"name": "absent"}))

        def refused() -> bool:
            try:
                custom.patch_namespaced_custom_object_status(
                    "openconnectors.io", "v1beta1", env.namespace, "connectorinstances", "probe", probe
                )
            except ApiException as error:
                return error.status in (400, 403, 422)
            return False

        wait_until(refused, timeout=15, what="the policy to refuse status writes")
        env.instances.create("crm", closeio_spec())
        refused_line = f"status of {env.namespace}/crm not written"
        wait_until(
            lambda: refused_line in env.operator.log(),  # type: ignore[union-attr]
            timeout=15,
            what="the operator to report the refused status write",
        )
        posts = env.simulator.control.counters().get("POST /instances", 0)
        assert posts == 1
        # Passes go on with backoff (each tries the status write again), the daemon never crashes
        # and the platform is not called again for work that is done.
        wait_until(
            lambda: env.operator.log().count(refused_line) >= 3,  # type: ignore[union-attr]
            timeout=30,
            what="three status writes refused and retried",
        )
        counters = env.simulator.control.counters()
        assert counters.get("POST /instances", 0) == posts
        assert counters.get("PUT /instances/{id}", 0) == 0
        assert "failed with an exception" not in env.operator.log()  # type: ignore[union-attr]
    env.instances.wait_ready("crm", timeout=60)
    assert env.simulator.control.counters().get("POST /instances", 0) == posts
