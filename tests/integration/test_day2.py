"""Day-2 operations (issue 11) with the operator as a process, the real API server and the
simulator over HTTP: what takes the operator's own clock or kopf's posting. How soon a reconcile
request is handled, the drift the resync repairs (once, not at every resync), and the Events as
users see them (the API server's, posted by kopf for the operator).

Adoption, ObserveOnly and its dry run, pause, pinned fields and a shared account's permissions
are tests/reconciler/test_day2.py's (the passes in-process, pass by pass).

"The platform" here is the simulator's public API, used the way a human uses the Open Connectors
UI or API; its control API only counts the operator's calls.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connector_operator.api.names import GROUP, PLURAL, VERSION
from tests.fixtures.operator import wait_until
from tests.integration.support import CLOSEIO_API_KEY, Env, closeio_spec, remote


def annotate(env: Env, name: str, **annotations: str | None) -> None:
    env.instances.custom.patch_namespaced_custom_object(
        GROUP, VERSION, env.namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
    )


def events_of(env: Env, name: str) -> list[Any]:
    return [e for e in env.core.list_namespaced_event(env.namespace).items if e.involved_object.name == name]


# Reconcile now


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
