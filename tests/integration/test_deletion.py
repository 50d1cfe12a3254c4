"""Deletion honours deletionPolicy, survives unusable account secrets, and tells how to get out.

There is no garbage collector in the test control plane, so the token Secret's removal is the
operator's own doing here, and is asserted as such.
"""

from __future__ import annotations

import httpx

from connector_operator.api.names import GROUP, PLURAL, VERSION
from tests.fixtures.operator import wait_until
from tests.integration.support import ACCOUNT, Env, closeio_spec, put_secret, remotes_for, secret_data


def test_delete_policy_deletes_the_remote_instance_and_the_token_secret(env: Env) -> None:
    uid = env.create_ready()["metadata"]["uid"]
    env.simulator.control.reset_counters()

    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    assert remotes_for(env.simulator, uid) == []
    assert secret_data(env.core, env.namespace, "crm-token") is None
    assert env.simulator.control.counters().get("DELETE /instances/{id}") == 1


def test_orphan_policy_leaves_the_remote_instance_and_hands_it_over(env: Env) -> None:
    # Issue 18: Orphan removes the object's identity tags (one PATCH), so another object may adopt
    # the instance; the user's own tags stay. tests/integration/test_ownership.py adopts it.
    created = env.create_ready(deletionPolicy="Orphan")
    uid, instance_id = created["metadata"]["uid"], created["status"]["instanceID"]
    env.simulator.control.reset_counters()

    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    assert remotes_for(env.simulator, uid) == []
    left = next(i for i in env.simulator.control.instances() if i["id"] == instance_id)
    assert left["tags"] == ["crm"]
    assert env.simulator.control.counters() == {"PATCH /instances/{id}": 1}


def test_deletion_without_credentials_is_stalled_with_the_release_command(env: Env) -> None:
    uid = env.create_ready()["metadata"]["uid"]
    # The Secret itself cannot go while the object uses it (the in-use finalizer, see
    # test_lifecycle_safety.py), but its keys can.
    put_secret(env.core, env.namespace, ACCOUNT, {"unrelated": "value"})

    env.instances.delete("crm")
    condition = env.instances.wait_condition("crm", "Stalled", "True", reason="DeletionBlocked")
    command = (
        f"kubectl patch connectorinstances crm -n {env.namespace} --type merge "
        """-p '{"spec":{"deletionPolicy":"Orphan"}}'"""
    )
    assert command in condition["message"]
    assert f"Secret '{ACCOUNT}' has no key 'userSecret'" in condition["message"]

    env.instances.patch_spec("crm", {"deletionPolicy": "Orphan"})
    env.instances.wait_gone("crm", timeout=30)
    assert len(remotes_for(env.simulator, uid)) == 1  # orphaned, as the user chose


def test_a_remote_instance_already_gone_counts_as_deleted(env: Env) -> None:
    instance_id = env.create_ready()["status"]["instanceID"]
    httpx.delete(
        f"{env.simulator.api_url}/instances/{instance_id}", headers=env.simulator.headers
    ).raise_for_status()

    env.instances.delete("crm")
    env.instances.wait_gone("crm")


def test_outage_and_rate_limit_during_delete_recover_without_leftovers(env: Env) -> None:
    uid = env.create_ready()["metadata"]["uid"]
    env.simulator.control.fail_next("DELETE", 2, status=503)
    env.simulator.control.rate_limit_next("DELETE", 1, retry_after=1)

    env.instances.delete("crm")
    env.instances.wait_gone("crm", timeout=60)
    assert remotes_for(env.simulator, uid) == []
    assert env.simulator.control.counters()["DELETE /instances/{id}"] == 4
    wait_until(
        lambda: secret_data(env.core, env.namespace, "crm-token") is None, what="the token Secret removed"
    )


def test_an_object_made_again_under_its_name_gets_an_instance_and_passes_of_its_own(env: Env) -> None:
    """kopf handles each uid on a worker of its own, so the old object's last events and the new
    one's first may be handled in either order; the new object must keep its own record."""
    old = env.create_ready()
    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    env.instances.create("crm", closeio_spec())
    new = env.instances.wait_ready("crm")
    old_uid, new_uid = old["metadata"]["uid"], new["metadata"]["uid"]
    assert new_uid != old_uid
    assert remotes_for(env.simulator, old_uid) == []
    assert [i["id"] for i in remotes_for(env.simulator, new_uid)] == [new["status"]["instanceID"]]
    # Its passes still run: a reconcile request is handled (a record lost to the old object's
    # deletion would leave it unanswered until the operator restarts).
    env.instances.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        env.namespace,
        PLURAL,
        "crm",
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": "after-recreate"}}},
    )
    wait_until(
        lambda: (
            (env.instances.get("crm") or {}).get("status", {}).get("lastHandledReconcileAt")
            == "after-recreate"
        ),
        what="the request handled by the new object's pass",
    )
