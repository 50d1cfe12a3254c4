"""Per-object series with the operator as a process: they come from kopf's watch (the listing at
start, every event, the DELETED event), which only the real operator against the real API server
has, so this is the lowest tier that shows them whole. The parts (rows, bounds, cap, time to
ready) are tested in tests/unit/test_object_series.py.

- 1,000 objects: each has its series; a restarted operator shows every one again well within one
  resync (from kopf's listing, before any pass); all deleted, no series of theirs is left.
- One object's life: time to ready, the platform's `valid=false` seen at a check, a hand edit
  repaired (drift), its account's conditions and budget waits; `--no-object-metrics` exports none.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.operator import OperatorProcess, wait_until
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    closeio_spec,
    put_secret,
    team_account,
    team_instance_spec,
)

GROUP, VERSION = "openconnectors.io", "v1beta1"
PER_OBJECT = (
    "oco_connectorinstance_condition",
    "oco_connectorinstance_condition_last_transition_timestamp_seconds",
    "oco_connectorinstance_info",
    "oco_platform_instance_valid",
    "oco_platform_instance_disabled",
    "oco_connectorinstance_drift_corrections_total",
    "oco_account_condition",
    "oco_account_budget_wait_seconds_total",
)
CONDITION, INFO, DRIFT = PER_OBJECT[0], PER_OBJECT[2], PER_OBJECT[5]
# How often the waits below scrape: the operator reuses an export for 2 s, and a scrape of 1,000
# objects (12,000 series) parsed ten times a second took a core from the operator under test.
SCRAPE = 2.0
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def series(operator: OperatorProcess, namespace: str) -> Series:
    """The per-object series of the objects in `namespace`, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.name in PER_OBJECT and sample.labels.get("namespace") == namespace
    }


def of(found: Series, metric: str, /, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        key: value
        for (name, key), value in found.items()
        if name == metric and all((k, v) in key for k, v in labels.items())
    }


def stalled_names(found: Series) -> set[str]:
    stalled = of(found, CONDITION, type="Stalled", status="True", reason="APIHostNotAllowed")
    return {dict(key)["name"] for key in stalled}


def in_parallel(work: Callable[[str], Any], names: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, names))


@pytest.mark.manual_operator
@pytest.mark.slow
def test_1000_objects_have_series_again_after_a_restart_and_none_once_deleted(env: Env) -> None:
    """1,000 objects whose platform host is not allowed: the series follow the objects' status,
    whatever it says, and these cost one pass each (Stalled, no retry), no Secret read, no
    platform call and no token Secret (the Ready path's series, instance ID and platform state,
    are the next test's). Under the suite's load the Ready kind took 4 minutes of it."""
    operator = env.start_operator()
    names = [f"crm-{n:04d}" for n in range(1000)]
    # Orphan: a deletion may not search a host it may not call, and would wait (DeletionBlocked).
    spec = closeio_spec(apiURL="https://not-allowed.example/elements/api-v2", deletionPolicy="Orphan")
    in_parallel(lambda name: env.instances.create(name, spec), names)
    wait_until(
        lambda: len(stalled_names(series(operator, env.namespace))) == len(names),
        300,
        "1,000 objects' series, Stalled",
        interval=SCRAPE,
    )
    before = series(operator, env.namespace)
    # Each object: Ready, Synced, Reconciling, Stalled with their transition times, its info
    # and its drift counter.
    assert len(of(before, INFO)) == len(names)
    assert len(before) == 10 * len(names)

    stopped = time.monotonic()
    operator.stop()
    resync = 60.0
    operator = env.start_operator("--resync-interval", str(int(resync)))
    env.simulator.control.reset_counters()
    wait_until(
        lambda: series(operator, env.namespace) == before, resync, "every series back", interval=SCRAPE
    )
    back = time.monotonic() - stopped
    print(f"series of 1,000 objects back {back:.1f} s after the restart")

    custom = env.instances.custom
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, env.namespace, "connectorinstances")
    wait_until(
        lambda: (
            not custom.list_namespaced_custom_object(
                GROUP, VERSION, env.namespace, "connectorinstances", limit=1
            )["items"]
        ),
        300,
        "every object deleted",
        interval=1.0,
    )
    # The last DELETED events may reach the operator a moment after the API server forgot them.
    wait_until(lambda: series(operator, env.namespace) == {}, 10, "no series left", interval=SCRAPE)


def check_now(env: Env, name: str) -> None:
    now = datetime.datetime.now(datetime.UTC).isoformat()
    env.instances.custom.patch_namespaced_custom_object(
        GROUP, VERSION, env.namespace, "connectorinstances", name,
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": now}}},
    )  # fmt: skip


def histogram_count(operator: OperatorProcess) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
        if sample.name == "oco_time_to_ready_seconds_count" and sample.labels.get("cause") == "create"
    )


@pytest.mark.manual_operator
def test_an_objects_series_follow_its_life_and_its_accounts(
    env: Env, custom: client.CustomObjectsApi, simulator_client: httpx.Client
) -> None:
    operator = env.start_operator()
    # One call at a time, one a second: the creates below wait for the budget.
    team_account(env, custom, {"requestsPerSecond": 1, "burst": 1, "maxInFlight": 1})
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    names = ["crm", "crm-2", "crm-3"]
    for name in names:
        env.instances.create(name, team_instance_spec())
    for name in names:
        env.instances.wait_ready(name)
    # The operator sees each Ready status come back through its watch a moment after we do.
    wait_until(lambda: histogram_count(operator) >= len(names), 10, "every time to ready observed")
    instance_id = env.instances.get("crm")["status"]["instanceID"]  # type: ignore[index]

    def created() -> Series | None:
        now = series(operator, env.namespace)
        return now if of(now, INFO, name="crm", instance_id=str(instance_id)) else None

    found = wait_until(created, 10, "the created instance's series")
    [info] = of(found, "oco_connectorinstance_info", name="crm")
    assert dict(info) == {
        "namespace": env.namespace, "name": "crm", "connector": "closeio",
        "instance_id": str(instance_id), "account": "ConnectorAccount/team",
    }  # fmt: skip
    assert of(
        found, "oco_account_condition", kind="ConnectorAccount", name="team", type="Ready", status="True"
    )
    [waited] = of(found, "oco_account_budget_wait_seconds_total", name="team").values()
    assert waited > 0  # three objects' calls, one at a time, one a second

    simulator_client.put(f"/instances/{instance_id}", json={"name": "renamed-by-hand"}).raise_for_status()
    check_now(env, "crm")
    wait_until(
        lambda: list(of(series(operator, env.namespace), DRIFT, name="crm").values()) == [1.0],
        20,
        "the repair counted (from 0)",
    )

    env.simulator.control.mark_invalid(instance_id)
    check_now(env, "crm")

    def invalid() -> Series | None:
        now = series(operator, env.namespace)
        return now if list(of(now, "oco_platform_instance_valid", name="crm").values()) == [0.0] else None

    found = wait_until(invalid, 20, "valid=false exported")
    ready = of(found, "oco_connectorinstance_condition", name="crm", type="Ready")
    assert [dict(key)["reason"] for key in ready] == ["InstanceInvalid"]

    env.instances.delete("crm-3")
    env.instances.wait_gone("crm-3")
    wait_until(
        lambda: not of(series(operator, env.namespace), "oco_connectorinstance_info", name="crm-3"),
        10,
        "crm-3 gone",
    )


@pytest.mark.manual_operator
def test_without_object_metrics_no_object_has_series(env: Env) -> None:
    operator = env.start_operator("--no-object-metrics")
    env.create_ready()
    text = operator.metrics()
    assert "oco_connectorinstances{" in text  # the aggregates stay
    assert series(operator, env.namespace) == {}
    assert "oco_object_series" not in text
