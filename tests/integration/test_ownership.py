"""Ownership that cannot be forged (issue 18), with the operator as a process, the real API server
and the simulator over HTTP.

A remote instance is an object's when it carries the object's UID tag (`k8s-uid:<uid>`, beside
`k8s-object:<namespace>/<name>` for humans, and `k8s-claim:<cluster>/<namespace>/<name>` with
`--cluster-name`). Nothing else is proof: not `status.instanceID` or `status.apiURL`, which anyone
who may write the status subresource can set. Two tenants share one platform account here: A in
one namespace, B in another, each with a credentials Secret of its own holding the same account
secrets, so a forged ID in A's status names an instance the account can reach.

What the operator sent is read from the simulator's request log (`PlatformLog`), which names the
path of each call: which instance it was on, and the base path it came in on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client

from connector_operator.api.names import GROUP, PLURAL, VERSION
from open_connectors_simulator.settings import API_BASE_PATH
from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_API_KEY,
    Env,
    closeio_spec,
    ready_inputs,
    remotes_for,
    secret_data,
)

pytestmark = pytest.mark.manual_operator  # every test starts its operator, with its own flags

PAUSED = "openconnectors.io/paused"
RECONCILE_REQUEST = "openconnectors.io/reconcile-requested-at"
TAKE_OVER = "openconnectors.io/take-over-from"
FINALIZER = "openconnectors.io/finalizer"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a write on an instance would change (the simulator stamps updatedDate on every PUT/PATCH).
REMOTE_FIELDS = ("name", "tags", "token", "configuration", "updatedDate", "valid", "disabled")


# The platform's side


@dataclass
class PlatformLog:
    """The API calls the simulator received since `mark()`, as `"<METHOD> <path>"` with the
    concrete path (base path and instance ID), from the control API's request log."""

    simulator: SimulatorHandle
    offset: int = 0

    def mark(self) -> None:
        self.offset = len(self.simulator.control.requests())

    def calls(self) -> list[str]:
        return [f"{r['method']} {r['path']}" for r in self.simulator.control.requests()[self.offset :]]

    def on(self, instance_id: int, methods: frozenset[str] | None = None) -> list[str]:
        """The calls on one instance (any base path, any sub-resource), of `methods` if given."""
        on_it = re.compile(rf" \S*/instances/{instance_id}(?:/\S*)?$")
        return [
            call
            for call in self.calls()
            if on_it.search(call) and (methods is None or call.split(" ", 1)[0] in methods)
        ]

    def writes_on(self, instance_id: int) -> list[str]:
        return self.on(instance_id, WRITE_METHODS)


@pytest.fixture
def platform_log(simulator: SimulatorHandle) -> PlatformLog:
    log = PlatformLog(simulator)
    log.mark()
    return log


def stored(simulator: SimulatorHandle, instance_id: int) -> dict[str, Any] | None:
    """The instance as the simulator's store holds it (token included), or None if it is gone."""
    return next((i for i in simulator.control.instances() if i["id"] == instance_id), None)


def remote_state(simulator: SimulatorHandle, instance_id: int) -> dict[str, Any]:
    instance = stored(simulator, instance_id)
    assert instance is not None, f"remote instance {instance_id} is gone"
    return {key: instance.get(key) for key in REMOTE_FIELDS}


def made_on_the_platform(simulator_client: httpx.Client) -> dict[str, Any]:
    """An instance made with the account's credentials outside Kubernetes (as in the UI): no tags."""
    response = simulator_client.post(
        "/instances",
        json={
            "name": "made-in-the-ui",
            "element": {"key": "closeio"},
            "tags": [],
            "configuration": {"username": CLOSEIO_API_KEY, "pagination.max": "50"},
        },
    )
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


# The cluster's side


@dataclass
class Tenants:
    """A (env.namespace, `a`) and B (`b`, another namespace): one platform account, a credentials
    Secret each, one operator watching both."""

    env: Env
    a: Instances
    b: Instances
    flags: tuple[str, ...]
    operator: OperatorProcess

    def restart(self, while_stopped: Callable[[], None] = lambda: None) -> None:
        self.operator.stop()
        while_stopped()
        self.operator = self.env.start_operator(*self.flags)


@pytest.fixture
def tenants(env: Env, other_namespace: str, api_client: client.ApiClient) -> Tenants:
    # localhost too: a second host form of the same simulator, for a forged status.apiURL.
    flags = ("--namespace", other_namespace, "--allowed-api-hosts=127.0.0.1:*,localhost:*")
    for namespace in (env.namespace, other_namespace):
        ready_inputs(env.core, namespace, env.simulator)  # Secret `oc-account`: the same account
    operator = env.start_operator(*flags)
    return Tenants(env, env.instances, Instances(api_client, other_namespace), flags, operator)


def create(
    instances: Instances, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorInstance",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }
    result: dict[str, Any] = instances.custom.create_namespaced_custom_object(
        GROUP, VERSION, instances.namespace, PLURAL, body
    )
    return result


def annotate(instances: Instances, name: str, annotations: dict[str, str | None]) -> None:
    instances.custom.patch_namespaced_custom_object(
        GROUP, VERSION, instances.namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
    )


def forge_status(instances: Instances, name: str, **fields: Any) -> dict[str, Any]:
    """What the API server's admin (or anyone allowed the status subresource) can do: a merge patch
    of `.../status`, every other status field kept."""
    before = (instances.get(name) or {}).get("status") or {}
    forged: dict[str, Any] = instances.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, instances.namespace, PLURAL, name, {"status": fields}
    )
    assert {k: forged["status"].get(k) for k in fields} == fields
    assert set(before) <= set(forged["status"])  # the rest kept (appliedDigest, tokenDigest, ...)
    return forged


def remove_finalizers(instances: Instances, name: str) -> None:
    instances.custom.patch_namespaced_custom_object(
        GROUP, VERSION, instances.namespace, PLURAL, name, {"metadata": {"finalizers": None}}
    )


def conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def verdict(instances: Instances, name: str, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The conditions once the object is Ready or Stalled, whichever comes (a wait for only the
    expected one would turn the other into a timeout instead of a message)."""

    def settled() -> dict[str, dict[str, Any]] | None:
        found = conditions(instances.get(name))
        decided = any(found.get(t, {}).get("status") == "True" for t in ("Ready", "Stalled"))
        return found if decided else None

    result: dict[str, dict[str, Any]] = wait_until(settled, timeout, f"{name}: Ready or Stalled")
    return result


def request_pass(
    instances: Instances,
    name: str,
    value: str,
    done: Callable[[dict[str, Any]], bool] = lambda obj: False,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Ask for a full pass (the reconcile-now annotation) and return the object once it is handled:
    `lastHandledReconcileAt` says so (or `done`, the outcome expected of that pass, holds)."""
    annotate(instances, name, {RECONCILE_REQUEST: value})

    def handled() -> dict[str, Any] | None:
        obj = instances.get(name) or {}
        return obj if (obj.get("status") or {}).get("lastHandledReconcileAt") == value or done(obj) else None

    result: dict[str, Any] = wait_until(handled, timeout, f"{name}: the pass asked for with {value!r}")
    return result


def stalled_for(reason: str, generation: int | None = None) -> Callable[[dict[str, Any]], bool]:
    """Whether an object is Stalled with `reason` (on `generation`, if given)."""

    def check(obj: dict[str, Any]) -> bool:
        stalled = conditions(obj).get("Stalled", {})
        return (
            stalled.get("status") == "True"
            and stalled.get("reason") == reason
            and generation in (None, stalled.get("observedGeneration"))
        )

    return check


def deleted(instances: Instances, name: str, timeout: float = 30.0) -> None:
    """Delete the object and wait until it is gone; a deletion that stalls (a Stalled reason other
    than the one it had) fails at once, with why. First the operator's finalizer must be on it
    (kopf adds it in a patch of its own, maybe after the first status write): deleted without
    it, the object would go without the deletion ever reaching the operator."""
    wait_until(
        lambda: FINALIZER in ((instances.get(name) or {}).get("metadata") or {}).get("finalizers", []),
        10,
        f"the operator's finalizer on {instances.namespace}/{name}",
    )
    before = conditions(instances.get(name)).get("Stalled", {})
    had = before.get("reason") if before.get("status") == "True" else None
    instances.delete(name)

    def finished() -> str | dict[str, Any] | None:
        obj = instances.get(name)
        if obj is None:
            return "gone"
        stalled = conditions(obj).get("Stalled", {})
        return stalled if stalled.get("status") == "True" and stalled.get("reason") != had else None

    result = wait_until(finished, timeout, f"{instances.namespace}/{name} to be deleted")
    assert result == "gone", f"the deletion of {instances.namespace}/{name} stalled: {result}"


def events_of(core: client.CoreV1Api, namespace: str, name: str) -> list[Any]:
    return [e for e in core.list_namespaced_event(namespace).items if e.involved_object.name == name]


def event_on(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    type_: str,
    reason: str | None,
    *mentions: str,
    timeout: float = 15.0,
) -> Any:
    """The Event of `type_` (and `reason`, unless None) on the object whose message names every one
    of `mentions` (Events are posted a moment after the pass that made them)."""

    def named() -> Any:
        found = events_of(core, namespace, name)
        return next(
            (
                event
                for event in found
                if event.type == type_
                and reason in (None, event.reason)
                and all(m in (event.message or "") for m in mentions)
            ),
            None,
        )

    what = f"a {type_} Event {reason} naming {mentions} on {namespace}/{name}"
    return wait_until(named, timeout, what)


def token_of(core: client.CoreV1Api, namespace: str, secret: str) -> str | None:
    return (secret_data(core, namespace, secret) or {}).get("token")


def assert_no_secret_values(tenants: Tenants, values: dict[str, str]) -> None:
    """No account secret, configuration value or instance token in the operator's log, in an Event
    of either namespace, or in the objects still there."""
    env = tenants.env
    serialize = client.ApiClient().sanitize_for_serialization
    namespaces = (tenants.a.namespace, tenants.b.namespace)
    events = [serialize(e) for ns in namespaces for e in env.core.list_namespaced_event(ns).items]
    objects = [
        obj
        for instances in (tenants.a, tenants.b)
        for obj in instances.custom.list_namespaced_custom_object(
            GROUP, VERSION, instances.namespace, PLURAL
        )["items"]
    ]
    written = {
        "operator log": tenants.operator.log(),
        "events": json.dumps(events),
        "objects": json.dumps(objects),
    }
    canaries = {
        "user secret": env.simulator.user_secret,
        "organization secret": env.simulator.organization_secret,
        "API key": CLOSEIO_API_KEY,
        **values,
    }
    for where, text in written.items():
        for what, value in canaries.items():
            assert value not in text, f"the {what} leaked into the {where}"


def both_ready(tenants: Tenants) -> tuple[dict[str, Any], dict[str, Any]]:
    """A and B created together (their first passes overlap), once both are Ready."""
    create(tenants.a, "a", closeio_spec())
    create(tenants.b, "b", closeio_spec())
    return tenants.a.wait_ready("a"), tenants.b.wait_ready("b")


# Forged status


FORGED_API_URLS: dict[str, Callable[[SimulatorHandle], str]] = {
    # Another base path on the same simulator: a call sent there is a 404 and shows in the log.
    "other-path": lambda simulator: f"{simulator.base_url}/forged{API_BASE_PATH}",
    # Another allowed name of the same host: a call sent there reaches the platform as it is.
    "other-host": lambda simulator: simulator.api_url.replace("//127.0.0.1:", "//localhost:"),
}


@pytest.mark.parametrize("forged_url", sorted(FORGED_API_URLS))
def test_a_forged_status_deletes_only_what_the_object_owns(
    tenants: Tenants, platform_log: PlatformLog, forged_url: str
) -> None:
    env, simulator = tenants.env, tenants.env.simulator
    a, b = both_ready(tenants)
    a_uid, a_id, b_id = a["metadata"]["uid"], a["status"]["instanceID"], b["status"]["instanceID"]
    assert {f"k8s-uid:{a_uid}", f"k8s-object:{tenants.a.namespace}/a"} <= set(
        remote_state(simulator, a_id)["tags"]
    )
    b_before = remote_state(simulator, b_id)
    a_token = token_of(env.core, tenants.a.namespace, "a-token")
    b_token = token_of(env.core, tenants.b.namespace, "b-token")
    assert a_token
    assert b_token
    forged_api_url = FORGED_API_URLS[forged_url](simulator)
    assert forged_api_url != a["status"]["apiURL"] == simulator.api_url
    platform_log.mark()

    forge_status(tenants.a, "a", instanceID=b_id, apiURL=forged_api_url)
    deleted(tenants.a, "a")

    # B's instance: still there, not written, not deleted.
    assert stored(simulator, b_id) is not None, f"B's instance was deleted: {platform_log.on(b_id)}"
    assert platform_log.writes_on(b_id) == []
    assert remote_state(simulator, b_id) == b_before
    # A's own instance is deleted, through the spec's endpoint.
    assert remotes_for(simulator, a_uid) == []
    assert stored(simulator, a_id) is None
    assert f"DELETE {API_BASE_PATH}/instances/{a_id}" in platform_log.calls()
    assert [c for c in platform_log.calls() if " /forged/" in c] == []  # never status.apiURL
    # What it did not delete, it says.
    event_on(env.core, tenants.a.namespace, "a", "Warning", "NotOwned", str(b_id))

    # B stays Ready after a check against the platform.
    checked = request_pass(tenants.b, "b", "after-the-forgery")
    assert conditions(checked)["Ready"]["status"] == "True", conditions(checked)
    assert checked["status"]["instanceID"] == b_id
    assert platform_log.writes_on(b_id) == []
    assert token_of(env.core, tenants.b.namespace, "b-token") == b_token
    assert_no_secret_values(tenants, {"A's token": a_token, "B's token": b_token})


def test_a_status_forged_while_the_operator_was_down_is_refused(
    tenants: Tenants, platform_log: PlatformLog
) -> None:
    env, simulator = tenants.env, tenants.env.simulator
    a, b = both_ready(tenants)
    a_uid, a_id, b_id = a["metadata"]["uid"], a["status"]["instanceID"], b["status"]["instanceID"]
    b_before = remote_state(simulator, b_id)
    a_token = token_of(env.core, tenants.a.namespace, "a-token")
    b_token = token_of(env.core, tenants.b.namespace, "b-token")
    assert a_token
    assert b_token
    assert a_token != b_token
    platform_log.mark()

    tenants.restart(while_stopped=lambda: forge_status(tenants.a, "a", instanceID=b_id))
    # A pass must act: the spec changed, and a platform check is asked for.
    generation = tenants.a.patch_spec("a", {"tags": ["crm", "after-the-forgery"]})["metadata"]["generation"]
    handled = request_pass(
        tenants.a, "a", "after-the-forgery", done=stalled_for("AdoptionConflict", generation)
    )

    assert platform_log.writes_on(b_id) == []
    assert remote_state(simulator, b_id) == b_before
    assert token_of(env.core, tenants.a.namespace, "a-token") != b_token
    stalled = conditions(handled).get("Stalled", {})
    assert (stalled.get("status"), stalled.get("reason")) == ("True", "AdoptionConflict"), conditions(handled)
    event_on(env.core, tenants.a.namespace, "a", "Warning", None, str(b_id))

    # And its deletion deletes its own instance only.
    deleted(tenants.a, "a")
    assert stored(simulator, b_id) is not None, f"B's instance was deleted: {platform_log.on(b_id)}"
    assert platform_log.writes_on(b_id) == []
    assert remotes_for(simulator, a_uid) == []
    assert stored(simulator, a_id) is None
    assert tenants.b.condition("b", "Ready")["status"] == "True"
    assert_no_secret_values(tenants, {"A's token": a_token, "B's token": b_token})


def test_a_forged_status_on_an_object_paused_from_creation_calls_nothing_on_that_instance(
    tenants: Tenants, platform_log: PlatformLog
) -> None:
    simulator = tenants.env.simulator
    create(tenants.b, "b", closeio_spec())
    b = tenants.b.wait_ready("b")
    b_id = b["status"]["instanceID"]
    b_before = remote_state(simulator, b_id)
    platform_log.mark()
    create(tenants.a, "a", closeio_spec(), {PAUSED: "true"})
    tenants.a.wait_condition("a", "Synced", "False", reason="Paused")
    assert [c for c in platform_log.calls() if c.split(" ", 1)[0] in WRITE_METHODS] == []
    assert "instanceID" not in ((tenants.a.get("a") or {}).get("status") or {})

    forge_status(tenants.a, "a", instanceID=b_id, apiURL=FORGED_API_URLS["other-host"](simulator))
    deleted(tenants.a, "a")

    assert stored(simulator, b_id) is not None, f"B's instance was deleted: {platform_log.on(b_id)}"
    assert platform_log.writes_on(b_id) == []  # a read proves it is not A's: nothing more
    assert remote_state(simulator, b_id) == b_before
    assert [c for c in platform_log.calls() if c.split(" ", 1)[0] in WRITE_METHODS] == []
    assert tenants.b.condition("b", "Ready")["status"] == "True"
    assert_no_secret_values(tenants, {"B's token": str(b_before["token"])})


# Orphan, then adopt


def test_orphan_releases_the_instance_and_another_namespace_adopts_it(
    tenants: Tenants, platform_log: PlatformLog
) -> None:
    env, simulator = tenants.env, tenants.env.simulator
    create(tenants.a, "a", closeio_spec(deletionPolicy="Orphan", tags=["crm", "team-a"]))
    a = tenants.a.wait_ready("a")
    a_uid, instance_id = a["metadata"]["uid"], a["status"]["instanceID"]
    a_marks = {f"k8s-uid:{a_uid}", f"k8s-object:{tenants.a.namespace}/a"}
    assert a_marks <= set(remote_state(simulator, instance_id)["tags"])
    a_token = token_of(env.core, tenants.a.namespace, "a-token")
    assert a_token
    simulator.control.reset_counters()
    platform_log.mark()

    deleted(tenants.a, "a")
    released = stored(simulator, instance_id)
    assert released is not None, "deletionPolicy Orphan deleted the instance"
    assert not a_marks & set(released["tags"]), released["tags"]  # A's marks are gone
    assert {"crm", "team-a"} <= set(released["tags"])  # the user's own stay
    writes = [r for r in simulator.control.requests() if r["method"] in WRITE_METHODS]
    assert [(r["method"] in ("PUT", "PATCH"), r["route"]) for r in writes] == [(True, "/instances/{id}")], (
        writes
    )
    assert len(platform_log.writes_on(instance_id)) == 1
    event_on(env.core, tenants.a.namespace, "a", "Normal", "Released", str(instance_id))

    simulator.control.reset_counters()
    platform_log.mark()
    create(tenants.b, "b", closeio_spec(instanceID=instance_id))
    found = verdict(tenants.b, "b")
    assert found["Ready"]["status"] == "True", found
    b = tenants.b.get("b") or {}
    assert b["status"]["instanceID"] == instance_id
    assert simulator.control.counters().get("POST /instances", 0) == 0
    assert platform_log.writes_on(instance_id) == [f"PUT {API_BASE_PATH}/instances/{instance_id}"]
    assert token_of(env.core, tenants.b.namespace, "b-token") == a_token
    tags = set(remote_state(simulator, instance_id)["tags"])
    assert f"k8s-uid:{b['metadata']['uid']}" in tags
    assert f"k8s-uid:{a_uid}" not in tags
    assert_no_secret_values(tenants, {"the instance token": a_token})


# Take-over from an object whose cluster died


def test_take_over_from_a_dead_objects_uid_only_when_it_is_gone_and_named(
    tenants: Tenants, platform_log: PlatformLog
) -> None:
    """B names A's instance and A's UID (take-over-from): refused while A lives, taken over with one
    PUT once A is gone. C names the instance of A2, also gone, without the annotation: refused."""
    env, simulator = tenants.env, tenants.env.simulator
    create(tenants.a, "a", closeio_spec())
    create(tenants.a, "a2", closeio_spec())
    a, a2 = tenants.a.wait_ready("a"), tenants.a.wait_ready("a2")
    a_uid, a_id = a["metadata"]["uid"], a["status"]["instanceID"]
    a2_uid, a2_id = a2["metadata"]["uid"], a2["status"]["instanceID"]
    simulator.control.reset_counters()
    platform_log.mark()

    b_uid = create(tenants.b, "b", closeio_spec(instanceID=a_id), {TAKE_OVER: a_uid})["metadata"]["uid"]
    create(tenants.b, "c", closeio_spec(instanceID=a2_id))
    for name in ("b", "c"):
        found = verdict(tenants.b, name)
        assert (found["Stalled"]["status"], found["Stalled"]["reason"]) == ("True", "AdoptionConflict"), found
    assert platform_log.writes_on(a_id) == []
    assert platform_log.writes_on(a2_id) == []

    def the_old_cluster_dies() -> None:
        for name in ("a", "a2"):
            tenants.a.delete(name)
            remove_finalizers(tenants.a, name)
            tenants.a.wait_gone(name)
        # The tags stay behind (checked before the operator is back: it may take over at once).
        assert f"k8s-uid:{a_uid}" in remote_state(simulator, a_id)["tags"]
        assert f"k8s-uid:{a2_uid}" in remote_state(simulator, a2_id)["tags"]

    tenants.restart(while_stopped=the_old_cluster_dies)

    taken = request_pass(tenants.b, "b", "a-is-gone")
    refused = request_pass(tenants.b, "c", "a2-is-gone")  # lastHandledReconcileAt: it was stalled already
    assert conditions(taken)["Ready"]["status"] == "True", conditions(taken)
    assert taken["status"]["instanceID"] == a_id
    assert simulator.control.counters().get("POST /instances", 0) == 0
    assert platform_log.writes_on(a_id) == [f"PUT {API_BASE_PATH}/instances/{a_id}"]
    tags = set(remote_state(simulator, a_id)["tags"])
    assert f"k8s-uid:{b_uid}" in tags
    assert f"k8s-uid:{a_uid}" not in tags
    event_on(env.core, tenants.b.namespace, "b", "Normal", "TakenOver", a_uid, b_uid)

    stalled = conditions(refused).get("Stalled", {})
    assert (stalled.get("status"), stalled.get("reason")) == ("True", "AdoptionConflict"), conditions(refused)
    assert platform_log.writes_on(a2_id) == []
    assert f"k8s-uid:{a2_uid}" in remote_state(simulator, a2_id)["tags"]


# Observed instances


def test_an_observed_instance_is_not_adopted_from_another_namespace(
    tenants: Tenants, platform_log: PlatformLog, simulator_client: httpx.Client
) -> None:
    simulator = tenants.env.simulator
    existing = made_on_the_platform(simulator_client)
    instance_id = existing["id"]
    create(
        tenants.a,
        "a",
        {
            "connectorKey": "closeio",
            "credentialsSecretRef": {"name": ACCOUNT},
            "instanceID": instance_id,
            "managementPolicy": "ObserveOnly",
        },
    )
    assert tenants.a.wait_ready("a")["status"]["instanceID"] == instance_id
    before = remote_state(simulator, instance_id)
    platform_log.mark()

    create(tenants.b, "b", closeio_spec(instanceID=instance_id))
    found = verdict(tenants.b, "b")
    assert found.get("Ready", {}).get("status") != "True", f"B adopted the instance A observes: {found}"
    assert (found["Stalled"]["status"], found["Stalled"]["reason"]) == ("True", "AdoptionConflict"), found
    assert platform_log.writes_on(instance_id) == []
    assert remote_state(simulator, instance_id) == before
    assert token_of(tenants.env.core, tenants.b.namespace, "b-token") is None
    assert tenants.a.condition("a", "Ready")["status"] == "True"


# The tags


def test_instances_carry_the_uid_object_and_claim_tags(env: Env) -> None:
    env.start_operator("--cluster-name", "blue")
    obj = env.create_ready()
    uid, instance_id = obj["metadata"]["uid"], obj["status"]["instanceID"]
    tags = set(remote_state(env.simulator, instance_id)["tags"])
    assert {
        f"k8s-uid:{uid}",
        f"k8s-object:{env.namespace}/crm",
        f"k8s-claim:blue/{env.namespace}/crm",
    } <= tags, tags
