"""Day-2 operations (issue 11) against the real API server and the simulator over HTTP (moved here
from tests/integration: the passes in-process, pass by pass): adoption, ObserveOnly and its dry
run, pause, fields pinned to the remote instance, and a shared account's permissions.

"The platform" here is the simulator's public API, used the way a human uses the Open Connectors
UI or API (a test creates or edits instances with the account's credentials); its control API
only counts the operator's calls. The pause and the reconcile request are annotations
(`Operator.annotate`) that the next pass sees; the Events are those the passes asked kopf to post.
What needs the operator's own clock or kopf's posting stays in tests/integration/test_day2.py: how
soon a reconcile request is handled, the drift repaired by the resync, the Events as the API
server stores them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api.names import GROUP, VERSION
from connector_operator.domain.outcome import Kind
from connector_operator.reconciler.account import VERIFIED
from tests.fixtures.simulator import CLIENT_TIMEOUT_SECONDS, SimulatorHandle
from tests.integration.support import (
    ACCOUNT_SECRET,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    account_values,
    closeio_spec,
    cluster_account,
    hand_made,
    instance_spec,
    put_secret,
    ready_inputs,
    remote,
    remotes_for,
    secret_data,
)
from tests.reconciler.kopfstandin import Operator

WRITES = ("POST /instances", "PUT /instances/{id}", "PATCH /instances/{id}", "DELETE /instances/{id}")
PAUSED = "openconnectors.io/paused"
REQUESTED = "openconnectors.io/reconcile-requested-at"


@pytest.fixture
async def platform(simulator: SimulatorHandle) -> AsyncIterator[httpx.AsyncClient]:
    """The platform's public API with the account's credentials, as a human uses it."""
    async with httpx.AsyncClient(
        base_url=simulator.api_url, headers=simulator.headers, timeout=CLIENT_TIMEOUT_SECONDS
    ) as client:
        yield client


async def made_by_hand(platform: httpx.AsyncClient, name: str = "made-in-the-ui") -> dict[str, Any]:
    """An instance created outside Kubernetes, as in the Open Connectors UI."""
    response = await platform.post("/instances", json=hand_made(name))
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


def writes(op: Operator) -> dict[str, int]:
    counters = op.simulator.control.counters()
    return {call: counters.get(call, 0) for call in WRITES}


def reported(generation: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a pass has reported on `generation` (Synced says which; a paused object's Ready
    keeps the generation it described)."""

    def check(obj: dict[str, Any]) -> bool:
        conditions = (obj.get("status") or {}).get("conditions") or []
        synced: dict[str, Any] = next((c for c in conditions if c["type"] == "Synced"), {})
        return bool(synced.get("observedGeneration") == generation)

    return check


# Adopt


async def test_adoption_takes_an_existing_instance_over_with_one_put_and_no_post(
    operator: Operator, platform: httpx.AsyncClient
) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    existing = await made_by_hand(platform)
    op.simulator.control.reset_counters()
    created = op.instances.create("adopted", closeio_spec(instanceID=existing["id"]))
    obj = await op.ready("adopted", passes=1)

    assert obj["status"]["instanceID"] == existing["id"]
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PUT /instances/{id}": 1}
    [instance] = remotes_for(op.simulator, created["metadata"]["uid"])  # tagged with our identity
    assert instance["id"] == existing["id"]
    assert instance["name"] == f"{op.namespace}-adopted"  # brought to the spec
    assert "by-hand" not in instance["tags"]
    assert secret_data(op.core, op.namespace, "adopted-token") == {
        "token": instance["token"],
        "instanceID": str(existing["id"]),
        "apiURL": op.simulator.api_url,
    }
    assert "Adopted" in op.events.reasons("adopted")
    # From now on it is like any other: deleting the object deletes it.
    assert await op.delete("adopted") is None
    assert op.instances.get("adopted") is None
    assert all(i["id"] != existing["id"] for i in op.simulator.control.instances())


async def test_an_instance_of_another_object_is_never_adopted(operator: Operator) -> None:
    op = operator
    first = await op.create_ready()
    taken = first["status"]["instanceID"]
    op.simulator.control.reset_counters()
    op.instances.create("thief", closeio_spec(instanceID=taken))
    stalled = await op.condition("thief", "Stalled", "True", reason="AdoptionConflict", passes=1)
    assert str(taken) in stalled["message"]
    assert op.instances.condition("thief", "Ready")["status"] == "False"
    assert writes(op) == dict.fromkeys(WRITES, 0)
    assert secret_data(op.core, op.namespace, "thief-token") is None  # its token stays with its owner
    assert first["metadata"]["uid"] in str(remote(op.simulator, taken)["tags"])


# ObserveOnly


@pytest.mark.settings(resync_interval=600)  # the platform is checked on request only
async def test_observe_only_reads_exports_and_plans_but_never_writes(
    operator: Operator, platform: httpx.AsyncClient
) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    existing = await made_by_hand(platform, name="oauth-made-in-the-ui")
    op.simulator.control.reset_counters()
    spec = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "oc-account"},
        "instanceID": existing["id"],
        "managementPolicy": "ObserveOnly",
        "deletionPolicy": "Delete",  # never honoured for ObserveOnly
    }
    op.instances.create("observed", spec)
    obj = await op.ready("observed", passes=1)
    assert obj["status"]["instanceID"] == existing["id"]
    assert secret_data(op.core, op.namespace, "observed-token") == {
        "token": existing["token"],
        "instanceID": str(existing["id"]),
        "apiURL": op.simulator.api_url,
    }
    # What Full would do: rename it to <namespace>-<name> and tag it.
    assert obj["status"]["plannedAction"] == "Update: instanceName, tags"
    changed = op.instances.patch_spec("observed", {"instanceName": "oauth-made-in-the-ui"})
    generation = changed["metadata"]["generation"]
    obj = await op.until("observed", reported(generation), passes=1, what=f"a pass on {generation}")
    assert obj["status"]["plannedAction"] == "Update: tags"  # the plan follows the spec, in that pass

    # Ready follows the platform's valid flag (checked now, on request).
    op.simulator.control.mark_invalid(existing["id"])
    op.annotate("observed", {REQUESTED: "invalid-check"})
    await op.condition("observed", "Ready", "False", reason="InstanceInvalid", passes=1)
    op.simulator.control.mark_invalid(existing["id"], valid=True)
    op.annotate("observed", {REQUESTED: "valid-again"})
    await op.ready("observed", passes=1)

    assert await op.delete("observed") is None
    assert op.instances.get("observed") is None
    assert remote(op.simulator, existing["id"])["name"] == "oauth-made-in-the-ui"  # still there, untouched
    assert writes(op) == dict.fromkeys(WRITES, 0)
    assert "Orphaned" in op.events.reasons("observed")


async def test_observe_only_plans_a_create_when_the_instance_is_gone(
    operator: Operator, platform: httpx.AsyncClient
) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    existing = await made_by_hand(platform)
    (await platform.delete(f"/instances/{existing['id']}")).raise_for_status()
    op.simulator.control.reset_counters()
    op.instances.create(
        "gone",
        {
            "connectorKey": "closeio",
            "credentialsSecretRef": {"name": "oc-account"},
            "instanceID": existing["id"],
            "managementPolicy": "ObserveOnly",
        },
    )
    stalled = await op.condition("gone", "Stalled", "True", reason="RemoteNotFound", passes=1)
    assert str(existing["id"]) in stalled["message"]
    assert (op.instances.get("gone") or {})["status"]["plannedAction"] == "Create"
    assert writes(op) == dict.fromkeys(WRITES, 0)


# Pause


async def test_a_paused_object_writes_nothing_until_unpaused(operator: Operator) -> None:
    op = operator
    obj = await op.create_ready()
    instance_id = obj["status"]["instanceID"]
    token_secret_version = op.core.read_namespaced_secret("crm-token", op.namespace).metadata.resource_version
    op.annotate("crm", {PAUSED: "true"})
    await op.condition("crm", "Synced", "False", reason="Paused", passes=1)
    assert op.instances.condition("crm", "Ready")["status"] == "True"  # Ready keeps its last value
    op.simulator.control.reset_counters()

    changed = op.instances.patch_spec("crm", {"tags": ["crm", "paused-edit"]})
    generation = changed["metadata"]["generation"]
    paused = await op.until("crm", reported(generation), passes=1, what=f"a pass on generation {generation}")
    assert paused["status"]["observedGeneration"] < generation  # not applied: kstatus InProgress
    assert {c["type"]: c["reason"] for c in paused["status"]["conditions"]}["Synced"] == "Paused"
    await op.run("crm")  # still paused: another pass writes nothing either
    assert writes(op) == dict.fromkeys(WRITES, 0)
    assert "paused-edit" not in remote(op.simulator, instance_id)["tags"]
    assert op.core.read_namespaced_secret("crm-token", op.namespace).metadata.resource_version == (
        token_secret_version
    )

    op.annotate("crm", {PAUSED: None})
    applied = await op.until(
        "crm",
        lambda o: o.get("status", {}).get("observedGeneration") == generation,
        passes=1,
        what="the change applied after unpausing",
    )
    synced = next(c for c in applied["status"]["conditions"] if c["type"] == "Synced")
    assert synced["status"] == "True"
    assert "paused-edit" in remote(op.simulator, instance_id)["tags"]
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PUT /instances/{id}": 1}


async def test_deleting_a_paused_object_honours_its_deletion_policy(operator: Operator) -> None:
    op = operator
    obj = await op.create_ready()
    op.annotate("crm", {PAUSED: "true"})
    await op.condition("crm", "Synced", "False", reason="Paused", passes=1)
    assert await op.delete("crm") is None
    assert op.instances.get("crm") is None
    assert remotes_for(op.simulator, obj["metadata"]["uid"]) == []


# Pinned fields


async def test_moving_an_existing_instance_to_another_connector_or_platform_is_refused(
    operator: Operator,
) -> None:
    """The API server refuses it (the CRD's rule on an object whose status has an instanceID)."""
    op = operator
    obj = await op.create_ready()
    for change in (
        {"connectorKey": "hubspot"},
        {"apiURL": op.simulator.api_url.replace("127.0.0.1", "localhost")},
    ):
        with pytest.raises(ApiException) as refused:
            op.instances.patch_spec("crm", {**change, "credentialsSecretRef": {"name": "oc-account"}})
        assert refused.value.status == 422
        assert "cannot change once the remote instance exists" in str(refused.value.body)
    assert (op.instances.get("crm") or {})["metadata"]["generation"] == obj["metadata"]["generation"]


# Through a shared account (hostile tenant): its secrets and its instances are not hers to take.


async def test_a_shared_account_must_allow_adoption_and_secret_export(
    operator: Operator, platform: httpx.AsyncClient, custom: client.CustomObjectsApi
) -> None:
    """The account's daemon is played by `Operator.account` (its verdict once, after each change
    of the account); the status it writes is tests/integration/test_accounts.py's."""
    op = operator
    name = f"acct-{uuid.uuid4().hex[:8]}"  # deleted after the test (tests/fixtures/kubernetes.py)
    put_secret(op.core, op.namespace, ACCOUNT_SECRET, account_values(op.simulator))
    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    cluster_account(custom, name, op.namespace, selects=op.namespace)
    ref = {"kind": "ClusterConnectorAccount", "name": name}
    verified = await op.account(name)
    assert (verified.kind, verified.message) == (Kind.SUCCESS, VERIFIED)  # the account is Ready
    victim = await made_by_hand(platform, name="another-teams-oauth-instance")
    op.simulator.control.reset_counters()  # the account's own verification call is behind us

    op.instances.create(
        "observer",
        {
            "connectorKey": "closeio",
            "accountRef": ref,
            "instanceID": victim["id"],
            "managementPolicy": "ObserveOnly",
        },
    )
    header = {"template": {"includeAccountSecrets": True, "data": {"H": "User {{ userSecret }}"}}}
    op.instances.create("exporter", instance_spec(accountRef=ref, tokenSecret=header))
    observed = await op.condition("observer", "Stalled", "True", reason="AccountNotAllowed", passes=1)
    assert "allowAdoption" in observed["message"]
    exported = await op.condition("exporter", "Stalled", "True", reason="AccountNotAllowed", passes=1)
    assert "allowSecretExport" in exported["message"]
    assert op.simulator.control.counters() == {}  # not one platform call for either
    assert secret_data(op.core, op.namespace, "observer-token") is None
    assert secret_data(op.core, op.namespace, "exporter-token") is None

    # The platform team allows both: the same objects go on, without a change of their own.
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterconnectoraccounts",
        name,
        {"spec": {"allowAdoption": True, "allowSecretExport": True}},
    )
    assert (await op.account(name)).kind is Kind.SUCCESS
    await op.ready("observer", passes=1)
    await op.ready("exporter", passes=1)
    assert (secret_data(op.core, op.namespace, "observer-token") or {})["token"] == victim["token"]
    assert (secret_data(op.core, op.namespace, "exporter-token") or {})[
        "H"
    ] == f"User {op.simulator.user_secret}"


async def test_an_observed_instance_is_never_adopted_by_another_object_but_its_observer_may_manage_it(
    operator: Operator, platform: httpx.AsyncClient
) -> None:
    # Issue 18: observing leaves no mark on the instance, so only the cluster can tell that it is
    # in use; before, another object of the account could adopt (PUT over) what a team observes.
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    existing = await made_by_hand(platform)
    observe = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "oc-account"},
        "instanceID": existing["id"],
        "managementPolicy": "ObserveOnly",
    }
    op.instances.create("observer", observe)
    await op.ready("observer", passes=1)
    op.simulator.control.reset_counters()
    op.instances.create("owner", closeio_spec(instanceID=existing["id"]))
    stalled = await op.condition("owner", "Stalled", "True", reason="AdoptionConflict", passes=1)
    assert "observer" in stalled["message"]
    assert writes(op) == dict.fromkeys(WRITES, 0)
    assert not any(t.startswith("k8s-") for t in remote(op.simulator, existing["id"])["tags"])

    # Full now: the observer adopts what it observed (the other object manages nothing).
    op.instances.patch_spec(
        "observer", {"managementPolicy": "Full", "configuration": closeio_spec()["configuration"]}
    )
    tag = f"k8s-uid:{(op.instances.get('observer') or {})['metadata']['uid']}"
    await op.until(
        "observer",
        lambda _: tag in remote(op.simulator, existing["id"])["tags"],
        passes=1,
        what="the observer's adoption",
    )
    await op.ready("observer", passes=1)
    assert writes(op)["PUT /instances/{id}"] == 1
    # Deleting the stalled one deletes only what carries its own tag: nothing.
    assert await op.delete("owner") is None
    assert op.instances.get("owner") is None
    assert remote(op.simulator, existing["id"])["id"] == existing["id"]
    assert writes(op)["DELETE /instances/{id}"] == 0
