"""Secret values never reach logs, events, status or kopf's bookkeeping.

A full lifecycle with distinctive values (create, a rejected update that makes the platform
quote what it got, a rotation, deletion), then everything the operator wrote is searched: its
log at DEBUG level, every Event in the namespace, and every version of the object it touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import ACCOUNT, CLOSEIO_SECRET, closeio_spec, put_secret, remote

API_KEY = "leak-canary-apikey-93b1f0c2"
ROTATED_KEY = "leak-canary-rotated-57d2e8aa"


def test_a_full_lifecycle_leaks_no_secret_value(
    start_operator: Callable[..., OperatorProcess],
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    operator = start_operator("--log-level", "DEBUG")
    put_secret(
        core,
        namespace,
        ACCOUNT,
        {"userSecret": simulator.user_secret, "organizationSecret": simulator.organization_secret},
    )
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": API_KEY})
    instances.create("crm", closeio_spec())
    instance_id = instances.wait_ready("crm")["status"]["instanceID"]
    snapshots = [json.dumps(instances.get("crm"))]

    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": ROTATED_KEY})
    wait_until(
        lambda: remote(simulator, instance_id)["configuration"]["username"] == ROTATED_KEY, what="rotation"
    )
    token = remote(simulator, instance_id)["token"]

    # A platform error that quotes the request must be redacted before it reaches a condition.
    simulator.control.fail_next("PUT", 1, status=400)
    instances.patch_spec("crm", {"tags": ["crm", "second"]})
    instances.wait_condition("crm", "Stalled", "True", reason="ConfigurationRejected")
    snapshots.append(json.dumps(instances.get("crm")))

    put_secret(
        core, namespace, ACCOUNT, {"userSecret": "wrong-user-canary-1", "organizationSecret": "wrong-org-2"}
    )
    instances.patch_spec("crm", {"tags": ["crm", "third"]})
    instances.wait_condition("crm", "Stalled", "True", reason="CredentialsRejected")
    snapshots.append(json.dumps(instances.get("crm")))
    core.delete_namespaced_secret(ACCOUNT, namespace)
    instances.delete("crm")
    instances.wait_condition("crm", "Stalled", "True", reason="DeletionBlocked")
    snapshots.append(json.dumps(instances.get("crm")))
    instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    instances.wait_gone("crm")
    operator.stop()

    events = core.list_namespaced_event(namespace).items
    assert events, "the lifecycle should have produced Events"
    written = {
        "operator log": operator.log(),
        "events": json.dumps([client.ApiClient().sanitize_for_serialization(e) for e in events]),
        "object": "\n".join(snapshots),
    }
    canaries = {
        "user secret": simulator.user_secret,
        "organization secret": simulator.organization_secret,
        "API key": API_KEY,
        "rotated API key": ROTATED_KEY,
        "instance token": token,
        "wrong user secret": "wrong-user-canary-1",
    }
    for where, text in written.items():
        for what, value in canaries.items():
            assert value not in text, f"the {what} leaked into the {where}"
    assert "DEBUG" in written["operator log"]  # the log really was at its most verbose
