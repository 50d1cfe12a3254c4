"""Day-2 operations (issue 11) with the operator as a process, the real API server and the
simulator over HTTP: adoption, ObserveOnly and its dry run, pause, reconcile now, drift repair,
fields pinned to the remote instance, and what users see in conditions and Events.

"The platform" here is the simulator's public API, used the way a human uses the Open Connectors
UI or API (a test creates or edits instances with the account's credentials); its control API
only counts the operator's calls.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, PLURAL, VERSION
from tests.fixtures.operator import wait_until
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    account_values,
    closeio_spec,
    put_secret,
    remote,
    remotes_for,
    secret_data,
)
from tests.integration.test_accounts import ACCOUNT_SECRET, account_condition, cluster_account, instance_spec

WRITES = ("POST /instances", "PUT /instances/{id}", "PATCH /instances/{id}", "DELETE /instances/{id}")


def made_by_hand(simulator_client: httpx.Client, name: str = "made-in-the-ui") -> dict[str, Any]:
    """An instance created outside Kubernetes, as in the Open Connectors UI."""
    response = simulator_client.post(
        "/instances",
        json={
            "name": name,
            "element": {"key": "closeio"},
            "tags": ["by-hand"],
            "configuration": {"username": CLOSEIO_API_KEY, "pagination.max": "50"},
        },
    )
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


def writes(env: Env) -> dict[str, int]:
    counters = env.simulator.control.counters()
    return {call: counters.get(call, 0) for call in WRITES}


def annotate(env: Env, name: str, **annotations: str | None) -> None:
    env.instances.custom.patch_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
    )


def handled(env: Env, name: str, generation: int) -> dict[str, Any]:
    """The object once a pass has reported on `generation` (Synced says which; a paused object's
    Ready keeps the generation it described)."""

    def reported() -> dict[str, Any] | None:
        obj = env.instances.get(name) or {}
        conditions = (obj.get("status") or {}).get("conditions") or []
        synced = next((c for c in conditions if c["type"] == "Synced"), {})
        return obj if synced.get("observedGeneration") == generation else None

    result: dict[str, Any] = wait_until(reported, 30, f"{name}: a pass on generation {generation}")
    return result


def events_of(env: Env, name: str) -> list[Any]:
    return [e for e in env.core.list_namespaced_event(env.namespace).items if e.involved_object.name == name]


# Adopt


def test_adoption_takes_an_existing_instance_over_with_one_put_and_no_post(
    env: Env, simulator_client: httpx.Client
) -> None:
    env.ready_inputs()
    existing = made_by_hand(simulator_client)
    env.simulator.control.reset_counters()
    created = env.instances.create("adopted", closeio_spec(instanceID=existing["id"]))
    obj = env.instances.wait_ready("adopted")

    assert obj["status"]["instanceID"] == existing["id"]
    assert writes(env) == {**dict.fromkeys(WRITES, 0), "PUT /instances/{id}": 1}
    [instance] = remotes_for(env.simulator, created["metadata"]["uid"])  # tagged with our identity
    assert instance["id"] == existing["id"]
    assert instance["name"] == f"{env.namespace}-adopted"  # brought to the spec
    assert "by-hand" not in instance["tags"]
    assert secret_data(env.core, env.namespace, "adopted-token") == {
        "token": instance["token"],
        "instanceID": str(existing["id"]),
        "apiURL": env.simulator.api_url,
    }
    assert any(e.reason == "Adopted" for e in events_of(env, "adopted"))
    # From now on it is like any other: deleting the object deletes it.
    env.instances.delete("adopted")
    env.instances.wait_gone("adopted")
    assert all(i["id"] != existing["id"] for i in env.simulator.control.instances())


def test_an_instance_of_another_object_is_never_adopted(env: Env) -> None:
    first = env.create_ready()
    taken = first["status"]["instanceID"]
    env.simulator.control.reset_counters()
    env.instances.create("thief", closeio_spec(instanceID=taken))
    stalled = env.instances.wait_condition("thief", "Stalled", reason="AdoptionConflict")
    assert str(taken) in stalled["message"]
    assert env.instances.condition("thief", "Ready")["status"] == "False"
    assert writes(env) == dict.fromkeys(WRITES, 0)
    assert secret_data(env.core, env.namespace, "thief-token") is None  # its token stays with its owner
    assert first["metadata"]["uid"] in str(remote(env.simulator, taken)["tags"])


# ObserveOnly


@pytest.mark.manual_operator
def test_observe_only_reads_exports_and_plans_but_never_writes(
    env: Env, simulator_client: httpx.Client
) -> None:
    env.start_operator("--resync-interval", "600")
    env.ready_inputs()
    existing = made_by_hand(simulator_client, name="oauth-made-in-the-ui")
    env.simulator.control.reset_counters()
    spec = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "oc-account"},
        "instanceID": existing["id"],
        "managementPolicy": "ObserveOnly",
        "deletionPolicy": "Delete",  # never honoured for ObserveOnly
    }
    env.instances.create("observed", spec)
    obj = env.instances.wait_ready("observed")
    assert obj["status"]["instanceID"] == existing["id"]
    assert secret_data(env.core, env.namespace, "observed-token") == {
        "token": existing["token"],
        "instanceID": str(existing["id"]),
        "apiURL": env.simulator.api_url,
    }
    # What Full would do: rename it to <namespace>-<name> and tag it.
    assert obj["status"]["plannedAction"] == "Update: instanceName, tags"
    changed = env.instances.patch_spec("observed", {"instanceName": "oauth-made-in-the-ui"})
    obj = handled(env, "observed", changed["metadata"]["generation"])
    wait_until(
        lambda: (
            (env.instances.get("observed") or {}).get("status", {}).get("plannedAction") == "Update: tags"
        ),
        10,
        "the plan to follow the spec",
    )

    # Ready follows the platform's valid flag (checked now, on request).
    env.simulator.control.mark_invalid(existing["id"])
    annotate(env, "observed", **{"openconnectors.io/reconcile-requested-at": "invalid-check"})
    env.instances.wait_condition("observed", "Ready", "False", reason="InstanceInvalid", timeout=10)
    env.simulator.control.mark_invalid(existing["id"], valid=True)
    annotate(env, "observed", **{"openconnectors.io/reconcile-requested-at": "valid-again"})
    env.instances.wait_ready("observed", timeout=10)

    env.instances.delete("observed")
    env.instances.wait_gone("observed")
    assert remote(env.simulator, existing["id"])["name"] == "oauth-made-in-the-ui"  # still there, untouched
    assert writes(env) == dict.fromkeys(WRITES, 0)
    assert any(e.reason == "Orphaned" for e in events_of(env, "observed"))


def test_observe_only_plans_a_create_when_the_instance_is_gone(
    env: Env, simulator_client: httpx.Client
) -> None:
    env.ready_inputs()
    existing = made_by_hand(simulator_client)
    simulator_client.delete(f"/instances/{existing['id']}").raise_for_status()
    env.simulator.control.reset_counters()
    env.instances.create(
        "gone",
        {
            "connectorKey": "closeio",
            "credentialsSecretRef": {"name": "oc-account"},
            "instanceID": existing["id"],
            "managementPolicy": "ObserveOnly",
        },
    )
    stalled = env.instances.wait_condition("gone", "Stalled", reason="RemoteNotFound")
    assert str(existing["id"]) in stalled["message"]
    assert (env.instances.get("gone") or {})["status"]["plannedAction"] == "Create"
    assert writes(env) == dict.fromkeys(WRITES, 0)


# Pause and reconcile now


def test_a_paused_object_writes_nothing_until_unpaused(env: Env) -> None:
    obj = env.create_ready()
    instance_id = obj["status"]["instanceID"]
    token_secret_version = env.core.read_namespaced_secret(
        "crm-token", env.namespace
    ).metadata.resource_version
    annotate(env, "crm", **{"openconnectors.io/paused": "true"})
    env.instances.wait_condition("crm", "Synced", "False", reason="Paused")
    assert env.instances.condition("crm", "Ready")["status"] == "True"  # Ready keeps its last value
    env.simulator.control.reset_counters()

    changed = env.instances.patch_spec("crm", {"tags": ["crm", "paused-edit"]})
    generation = changed["metadata"]["generation"]
    paused = handled(env, "crm", generation)
    assert paused["status"]["observedGeneration"] < generation  # not applied: kstatus InProgress
    assert {c["type"]: c["reason"] for c in paused["status"]["conditions"]}["Synced"] == "Paused"
    assert writes(env) == dict.fromkeys(WRITES, 0)
    assert "paused-edit" not in remote(env.simulator, instance_id)["tags"]
    assert env.core.read_namespaced_secret("crm-token", env.namespace).metadata.resource_version == (
        token_secret_version
    )

    annotate(env, "crm", **{"openconnectors.io/paused": None})
    wait_until(
        lambda: (env.instances.get("crm") or {}).get("status", {}).get("observedGeneration") == generation,
        15,
        "the change applied after unpausing",
    )
    env.instances.wait_condition("crm", "Synced", "True")
    assert "paused-edit" in remote(env.simulator, instance_id)["tags"]
    assert writes(env) == {**dict.fromkeys(WRITES, 0), "PUT /instances/{id}": 1}


def test_deleting_a_paused_object_honours_its_deletion_policy(env: Env) -> None:
    obj = env.create_ready()
    annotate(env, "crm", **{"openconnectors.io/paused": "true"})
    env.instances.wait_condition("crm", "Synced", "False", reason="Paused")
    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    assert remotes_for(env.simulator, obj["metadata"]["uid"]) == []


@pytest.mark.manual_operator
def test_a_reconcile_request_checks_the_platform_within_seconds(env: Env) -> None:
    env.start_operator("--resync-interval", "600")
    env.create_ready()
    env.simulator.control.reset_counters()
    annotate(env, "crm", **{"openconnectors.io/reconcile-requested-at": "2026-12-01T10:00:00Z"})
    wait_until(
        lambda: (
            (env.instances.get("crm") or {}).get("status", {}).get("lastHandledReconcileAt")
            == "2026-12-01T10:00:00Z"
        ),
        5,
        "the request handled",
    )
    assert env.simulator.control.counters().get("GET /instances/{id}", 0) == 1
    # The same value again is no new request; our status write does not start another pass.
    annotate(env, "crm", **{"openconnectors.io/reconcile-requested-at": "2026-12-01T10:00:00Z", "x": "y"})
    annotate(env, "crm", **{"openconnectors.io/reconcile-requested-at": "second"})
    wait_until(
        lambda: (env.instances.get("crm") or {}).get("status", {}).get("lastHandledReconcileAt") == "second",
        5,
        "the second request handled",
    )
    assert env.simulator.control.counters().get("GET /instances/{id}", 0) == 2


# Drift


@pytest.mark.manual_operator
@pytest.mark.slow
def test_a_hand_edit_on_the_platform_is_repaired_within_one_resync(
    env: Env, simulator_client: httpx.Client
) -> None:
    env.start_operator("--resync-interval", "600")  # the object's own resyncInterval decides
    obj = env.create_ready(resyncInterval="30s")
    instance_id = obj["status"]["instanceID"]
    before = remote(env.simulator, instance_id)
    simulator_client.put(
        f"/instances/{instance_id}",
        json={"name": "renamed-by-hand", "configuration": {"pagination.max": "10"}},
    ).raise_for_status()
    env.simulator.control.reset_counters()

    def repaired() -> bool:
        now = remote(env.simulator, instance_id)
        return bool(now["name"] == before["name"] and now["configuration"]["pagination.max"] == "50")

    wait_until(repaired, 40, "the drift repaired by the object's 30 s resync")
    assert env.simulator.control.counters().get("PUT /instances/{id}", 0) == 1
    [event] = wait_until(
        lambda: [e for e in events_of(env, "crm") if e.reason == "DriftCorrected"], 10, "the Event"
    )
    assert event.type == "Warning"
    assert "instanceName" in event.message
    assert "configuration.pagination.max" in event.message
    assert CLOSEIO_API_KEY not in event.message


# Pinned fields


def test_moving_an_existing_instance_to_another_connector_or_platform_is_refused(env: Env) -> None:
    obj = env.create_ready()
    for change in (
        {"connectorKey": "hubspot"},
        {"apiURL": env.simulator.api_url.replace("127.0.0.1", "localhost")},
    ):
        with pytest.raises(ApiException) as refused:
            env.instances.patch_spec("crm", {**change, "credentialsSecretRef": {"name": "oc-account"}})
        assert refused.value.status == 422
        assert "cannot change once the remote instance exists" in str(refused.value.body)
    assert (env.instances.get("crm") or {})["metadata"]["generation"] == obj["metadata"]["generation"]


# What users see


def test_waiting_reads_as_waiting_and_events_come_from_the_operator(env: Env) -> None:
    env.instances.create("waiting", closeio_spec())
    synced = env.instances.wait_condition("waiting", "Synced", "False", reason="WaitingForSecret")
    assert "oc-account" in synced["message"] or "closeio-api" in synced["message"]
    env.ready_inputs()
    env.instances.wait_ready("waiting")
    created = wait_until(
        lambda: [e for e in events_of(env, "waiting") if e.reason == "Creating"], 10, "the Creating event"
    )
    assert created[0].source.component == "open-connectors-operator"
    assert created[0].reporting_component == "open-connectors-operator"


# Through a shared account (hostile tenant): its secrets and its instances are not hers to take.


def test_a_shared_account_must_allow_adoption_and_secret_export(
    env: Env, simulator_client: httpx.Client, custom: client.CustomObjectsApi
) -> None:
    name = f"acct-{uuid.uuid4().hex[:8]}"  # deleted after the test (tests/fixtures/kubernetes.py)
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    cluster_account(custom, name, env.namespace, selects=env.namespace)
    ref = {"kind": "ClusterConnectorAccount", "name": name}
    wait_until(
        lambda: account_condition(custom, name, "Ready").get("status") == "True", what="account verified"
    )
    victim = made_by_hand(simulator_client, name="another-teams-oauth-instance")
    env.simulator.control.reset_counters()  # the account's own verification call is behind us

    env.instances.create(
        "observer",
        {
            "connectorKey": "closeio",
            "accountRef": ref,
            "instanceID": victim["id"],
            "managementPolicy": "ObserveOnly",
        },
    )
    header = {"template": {"includeAccountSecrets": True, "data": {"H": "User {{ userSecret }}"}}}
    env.instances.create("exporter", instance_spec(accountRef=ref, tokenSecret=header))
    observed = env.instances.wait_condition("observer", "Stalled", reason="AccountNotAllowed")
    assert "allowAdoption" in observed["message"]
    exported = env.instances.wait_condition("exporter", "Stalled", reason="AccountNotAllowed")
    assert "allowSecretExport" in exported["message"]
    assert env.simulator.control.counters() == {}  # not one platform call for either
    assert secret_data(env.core, env.namespace, "observer-token") is None
    assert secret_data(env.core, env.namespace, "exporter-token") is None

    # The platform team allows both: the same objects go on, without a change of their own.
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterconnectoraccounts",
        name,
        {"spec": {"allowAdoption": True, "allowSecretExport": True}},
    )
    env.instances.wait_ready("observer")
    env.instances.wait_ready("exporter")
    assert (secret_data(env.core, env.namespace, "observer-token") or {})["token"] == victim["token"]
    assert (secret_data(env.core, env.namespace, "exporter-token") or {})[
        "H"
    ] == f"User {env.simulator.user_secret}"


def test_an_observed_instance_is_never_adopted_by_another_object_but_its_observer_may_manage_it(
    env: Env, simulator_client: httpx.Client
) -> None:
    # Issue 18: observing leaves no mark on the instance, so only the cluster can tell that it is
    # in use; before, another object of the account could adopt (PUT over) what a team observes.
    env.ready_inputs()
    existing = made_by_hand(simulator_client)
    observe = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "oc-account"},
        "instanceID": existing["id"],
        "managementPolicy": "ObserveOnly",
    }
    env.instances.create("observer", observe)
    env.instances.wait_ready("observer")
    env.simulator.control.reset_counters()
    env.instances.create("owner", closeio_spec(instanceID=existing["id"]))
    stalled = env.instances.wait_condition("owner", "Stalled", reason="AdoptionConflict")
    assert "observer" in stalled["message"]
    assert writes(env) == dict.fromkeys(WRITES, 0)
    assert not any(t.startswith("k8s-") for t in remote(env.simulator, existing["id"])["tags"])

    # Full now: the observer adopts what it observed (the other object manages nothing).
    env.instances.patch_spec(
        "observer", {"managementPolicy": "Full", "configuration": closeio_spec()["configuration"]}
    )
    tag = f"k8s-uid:{env.instances.get('observer')['metadata']['uid']}"  # type: ignore[index]
    wait_until(lambda: tag in remote(env.simulator, existing["id"])["tags"], what="the observer's adoption")
    env.instances.wait_ready("observer")
    assert writes(env)["PUT /instances/{id}"] == 1
    # Deleting the stalled one deletes only what carries its own tag: nothing.
    env.instances.delete("owner")
    env.instances.wait_gone("owner")
    assert remote(env.simulator, existing["id"])["id"] == existing["id"]
    assert writes(env)["DELETE /instances/{id}"] == 0


@pytest.mark.manual_operator
@pytest.mark.slow
def test_a_field_the_platform_rewrites_is_repaired_once_not_at_every_resync(env: Env) -> None:
    env.start_operator("--resync-interval", "5")
    # The platform strips markup from names: what it stores is never what was sent.
    obj = env.create_ready(instanceName="shop <b>crm</b>")
    instance_id = obj["status"]["instanceID"]
    assert remote(env.simulator, instance_id)["name"] == "shop crm"
    env.simulator.control.reset_counters()
    wait_until(
        lambda: env.simulator.control.counters().get("GET /instances/{id}", 0) >= 3, 40, "three resyncs"
    )
    assert env.simulator.control.counters().get("PUT /instances/{id}", 0) == 1
    [event] = wait_until(
        lambda: [e for e in events_of(env, "crm") if e.reason == "DriftCorrected"], 10, "the Event"
    )
    assert "the platform keeps its own form of instanceName" in event.message
