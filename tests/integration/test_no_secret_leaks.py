"""Secret values never reach logs, events, status, metrics or kopf's bookkeeping.

A full lifecycle with distinctive values (create, a rejected update that makes the platform
quote what it got, a rotation, deletion), then everything the operator wrote is searched: its
log at DEBUG level, every Event in the namespace, every version of the object it touched, and
its metrics (the per-object series included) at each of those moments.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from tests.fixtures.operator import wait_until
from tests.integration.support import ACCOUNT, CLOSEIO_SECRET, Env, closeio_spec, put_secret, remote

API_KEY = "leak-canary-apikey-93b1f0c2"
ROTATED_KEY = "leak-canary-rotated-57d2e8aa"


@pytest.mark.manual_operator
def test_a_full_lifecycle_leaks_no_secret_value(env: Env) -> None:
    operator = env.start_operator("--log-level", "DEBUG")
    put_secret(
        env.core,
        env.namespace,
        ACCOUNT,
        {"userSecret": env.simulator.user_secret, "organizationSecret": env.simulator.organization_secret},
    )
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": API_KEY})
    env.instances.create("crm", closeio_spec())
    instance_id = env.instances.wait_ready("crm")["status"]["instanceID"]
    snapshots = [json.dumps(env.instances.get("crm"))]
    scrapes = [operator.metrics()]

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": ROTATED_KEY})
    wait_until(
        lambda: remote(env.simulator, instance_id)["configuration"]["username"] == ROTATED_KEY,
        what="rotation",
    )
    token = remote(env.simulator, instance_id)["token"]

    # A platform error that quotes the request must be redacted before it reaches a condition.
    env.simulator.control.fail_next("PUT", 1, status=400)
    env.instances.patch_spec("crm", {"tags": ["crm", "second"]})
    env.instances.wait_condition("crm", "Stalled", "True", reason="ConfigurationRejected")
    snapshots.append(json.dumps(env.instances.get("crm")))
    scrapes.append(operator.metrics())

    put_secret(
        env.core,
        env.namespace,
        ACCOUNT,
        {"userSecret": "wrong-user-canary-1", "organizationSecret": "wrong-org-2"},
    )
    env.instances.patch_spec("crm", {"tags": ["crm", "third"]})
    # Refused right after the Secret changed: retried for a grace period (a rotation may be under
    # way), with the same reason, then Stalled.
    wait_until(
        lambda: (
            "CredentialsRejected"
            in {env.instances.condition("crm", t).get("reason") for t in ("Stalled", "Reconciling")}
        ),
        what="the new credentials rejected",
    )
    snapshots.append(json.dumps(env.instances.get("crm")))
    scrapes.append(operator.metrics())
    put_secret(env.core, env.namespace, ACCOUNT, {})  # held while in use: emptied, not deleted
    env.instances.delete("crm")
    env.instances.wait_condition("crm", "Stalled", "True", reason="DeletionBlocked")
    snapshots.append(json.dumps(env.instances.get("crm")))
    scrapes.append(operator.metrics())
    env.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    env.instances.wait_gone("crm")
    operator.stop()

    events = env.core.list_namespaced_event(env.namespace).items
    assert events, "the lifecycle should have produced Events"
    written = {
        "operator log": operator.log(),
        "events": json.dumps([client.ApiClient().sanitize_for_serialization(e) for e in events]),
        "object": "\n".join(snapshots),
        "metrics": "\n".join(scrapes),
    }
    canaries = {
        "user secret": env.simulator.user_secret,
        "organization secret": env.simulator.organization_secret,
        "API key": API_KEY,
        "rotated API key": ROTATED_KEY,
        "instance token": token,
        "wrong user secret": "wrong-user-canary-1",
    }
    for where, text in written.items():
        for what, value in canaries.items():
            assert value not in text, f"the {what} leaked into the {where}"
    assert "DEBUG" in written["operator log"]  # the log really was at its most verbose
    assert f'instance_id="{instance_id}"' in written["metrics"]  # the per-object series were there
