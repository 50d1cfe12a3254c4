"""Outages, rate limits, lost answers and a killed operator never duplicate or orphan anything.

The crash tests are the ones that matter most: the operator is SIGKILLed after the platform has
created the instance but before the operator learned its ID. The restarted operator must find
that instance by its identity tag and adopt it, not create a second one: alone, and in the
middle of a burst of 200 creates, where it lists the platform's instances once instead of
searching before each create (issue 13).
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import Env, closeio_spec, remotes_for, secret_data


def test_outage_during_create_recovers_with_one_instance(env: Env) -> None:
    env.ready_inputs()
    env.simulator.control.fail_next("POST", 2, status=503)
    uid = env.instances.create("crm", closeio_spec())["metadata"]["uid"]
    condition = env.instances.wait_condition("crm", "Reconciling", "True", reason="APIUnavailable")
    assert "503" in condition["message"]
    env.instances.wait_ready("crm", timeout=30)
    assert len(remotes_for(env.simulator, uid)) == 1
    assert env.simulator.control.counters()["POST /instances"] == 3


def test_rate_limit_during_create_honours_retry_after(env: Env) -> None:
    env.ready_inputs()
    env.simulator.control.rate_limit_next("POST", 1, retry_after=2)
    uid = env.instances.create("crm", closeio_spec())["metadata"]["uid"]
    condition = env.instances.wait_condition("crm", "Reconciling", "True", reason="RateLimited")
    assert "retrying after 2s" in condition["message"]
    env.instances.wait_ready("crm", timeout=30)
    assert len(remotes_for(env.simulator, uid)) == 1


def test_a_lost_answer_to_the_post_does_not_duplicate_the_instance(env: Env) -> None:
    env.ready_inputs()
    env.simulator.control.drop_next("POST", 1, after_handling=True)
    uid = env.instances.create("crm", closeio_spec())["metadata"]["uid"]
    obj = env.instances.wait_ready("crm", timeout=30)
    [instance] = remotes_for(env.simulator, uid)
    assert obj["status"]["instanceID"] == instance["id"]
    assert env.simulator.control.counters()["POST /instances"] == 1


@pytest.mark.manual_operator
def test_operator_killed_between_post_and_status_write_adopts_its_instance(env: Env) -> None:
    env.ready_inputs()
    operator = env.start_operator()
    env.simulator.control.hang_next("POST", 1)  # the platform creates the instance, the answer never comes
    uid = env.instances.create("crm", closeio_spec())["metadata"]["uid"]
    wait_until(lambda: remotes_for(env.simulator, uid), what="the platform to have created the instance")
    operator.kill()
    assert "instanceID" not in (env.instances.get("crm").get("status") or {})

    env.start_operator()
    obj = env.instances.wait_ready("crm", timeout=30)
    [instance] = remotes_for(env.simulator, uid)
    assert obj["status"]["instanceID"] == instance["id"]
    assert secret_data(env.core, env.namespace, "crm-token")["token"] == instance["token"]
    assert env.simulator.control.counters()["POST /instances"] == 1


@pytest.mark.manual_operator
def test_restart_of_a_settled_operator_makes_no_writes(env: Env) -> None:
    env.ready_inputs()
    operator = env.start_operator()
    env.instances.create("crm", closeio_spec())
    version = env.instances.wait_ready("crm")["metadata"]["resourceVersion"]
    operator.stop()
    env.simulator.control.reset_counters()

    env.start_operator()
    # A change the restarted operator must notice proves it has settled; it must not have written before.
    env.core.patch_namespaced_secret("crm-token", env.namespace, {"data": {"token": "dGFtcGVyZWQ="}})
    wait_until(
        lambda: secret_data(env.core, env.namespace, "crm-token")["token"] != "tampered",
        what="the Secret restored",
    )
    counters = env.simulator.control.counters()
    assert counters.get("POST /instances", 0) == 0
    assert counters.get("PUT /instances/{id}", 0) == 0
    assert env.instances.get("crm")["metadata"]["resourceVersion"] == version


def test_token_secret_edited_or_deleted_by_hand_is_restored(env: Env) -> None:
    env.create_ready()
    original = secret_data(env.core, env.namespace, "crm-token")

    env.core.patch_namespaced_secret(
        "crm-token", env.namespace, {"data": {"token": "dGFtcGVyZWQ=", "mine": "eA=="}}
    )
    wait_until(
        lambda: secret_data(env.core, env.namespace, "crm-token")["token"] == original["token"],
        what="restore",
    )
    # Issue 11: the operator owns the data of its Secret (templates add keys the proper way), so a
    # key added by hand goes with the same write; before, it was kept.
    assert "mine" not in (secret_data(env.core, env.namespace, "crm-token") or {})

    env.core.delete_namespaced_secret("crm-token", env.namespace)
    wait_until(
        lambda: (secret_data(env.core, env.namespace, "crm-token") or {}).get("token") == original["token"],
        what="recreate",
    )


@pytest.mark.manual_operator
def test_a_kill_in_the_middle_of_200_creates_leaves_one_instance_per_object(env: Env) -> None:
    env.ready_inputs()
    operator = env.start_operator()
    env.simulator.control.set_latency(50)  # 8 calls in flight per namespace: about 160 creates a second
    env.simulator.control.hang_next("POST", 5)  # five answers lost: in flight when the kill comes
    uids = {env.instances.create(f"crm-{n}", closeio_spec())["metadata"]["uid"] for n in range(200)}
    wait_until(lambda: len(env.simulator.control.instances()) >= 60, what="60 instances created")
    operator.kill()
    created_before = len(env.simulator.control.instances())
    assert created_before < 200, "the burst ended before the kill: nothing was tested"
    env.simulator.control.reset_counters()  # also clears the request log

    env.start_operator()
    wait_until(lambda: ready_count(env) == 200, timeout=120, what="200 objects Ready")
    owners = Counter(
        tag.removeprefix("k8s-uid:")
        for instance in env.simulator.control.instances()
        for tag in instance.get("tags") or []
        if tag.startswith("k8s-uid:")
    )
    assert set(owners) == uids  # no instance without its object, and every object has one
    assert set(owners.values()) == {1}  # never two
    counters = env.simulator.control.counters()
    # After the restart: one listing of the account's instances (a page of 200) stands for a
    # search before each of the creates left; the instances created before the kill are adopted
    # (and those the platform finished after it: it completes a request whose caller is gone).
    assert counters.get("GET /instances", 0) <= 2
    assert counters.get("POST /instances", 0) <= 200 - created_before


def ready_count(env: Env) -> int:
    listed = env.instances.custom.list_namespaced_custom_object(
        "openconnectors.io", "v1beta1", env.namespace, "connectorinstances"
    )
    return sum(
        1
        for item in listed["items"]
        for condition in (item.get("status") or {}).get("conditions") or []
        if condition["type"] == "Ready" and condition["status"] == "True"
    )


@pytest.mark.manual_operator
def test_a_recreate_whose_answer_is_lost_is_adopted_not_repeated(env: Env) -> None:
    """Review of issue 13, HIGH 1: the remote instance is deleted on the platform, the resync's
    404 makes the operator create a new one, and that POST's answer is lost. Status still names
    the deleted instance; the next pass must search for the object's tag and adopt the new
    instance, not POST a third time."""
    env.start_operator("--resync-interval", "5")
    created = env.create_ready()
    first, uid = created["status"]["instanceID"], created["metadata"]["uid"]
    env.simulator.control.drop_next("POST", 1, after_handling=True)
    platform_delete(env, first)
    wait_until(
        lambda: env.instances.get("crm")["status"].get("instanceID") not in (None, first),
        timeout=60,
        what="a new instance in status",
    )
    env.instances.wait_ready("crm", timeout=30)
    [instance] = remotes_for(env.simulator, uid)
    assert env.instances.get("crm")["status"]["instanceID"] == instance["id"]
    assert env.simulator.control.counters()["POST /instances"] == 2  # the first create, one recreate


def platform_delete(env: Env, instance_id: int) -> None:
    """Someone deletes the instance on the platform, with the account's own secrets."""
    authorization = f"User {env.simulator.user_secret}, Organization {env.simulator.organization_secret}"
    answer = httpx.delete(
        f"{env.simulator.api_url}/instances/{instance_id}", headers={"Authorization": authorization}
    )
    answer.raise_for_status()
