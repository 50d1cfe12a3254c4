"""Phases `floor` and `create`: N objects from nothing to Ready, by the floor script and by the operator.

Both apply the same N objects with the same driver concurrency and start the clock at the first
create; both are observed by the same watch. `create` also counts the requests the operator made
to either side per object, from just before the first create until the operator is quiet again
(the status write that makes an object Ready is not always its last request: Events follow).
"""

from __future__ import annotations

import time
from typing import Any

from bench.apimetrics import WRITE_VERBS, keyed
from bench.context import Bench, per
from bench.floor import run_floor
from bench.ready import ReadyTracker
from bench.workload import SET_LABEL, apply_instances, prepare_namespaces

OPERATOR_SET = "operator"


class PhaseFailed(Exception):
    """A phase could not produce its measurement (e.g. objects never became Ready)."""


async def floor_phase(b: Bench) -> dict[str, Any]:
    await prepare_namespaces(b.kube, b.workload, "floor", inputs=False)
    await b.control.reset()  # also restores the start-up latency
    before, cpu_before = await b.both(), b.cpu()
    async with b.apiserver_profile("floor"):
        run = await run_floor(
            b.kube,
            b.simulator.api_url,
            b.workload.objects("floor"),
            concurrency=b.cfg.floor_concurrency,
            apply_concurrency=b.cfg.apply_concurrency,
            timeout=b.cfg.ready_timeout,
        )
    delta, cpu = b.delta(before, await b.both()), b.cpu_delta(cpu_before, b.cpu())
    # The operator gets the same empty account the floor started with.
    await b.control.reset()
    result = {
        "seconds_to_all_ready": round(run.seconds_to_all_ready, 3) if run.seconds_to_all_ready else None,
        "all_ready": run.all_ready,
        "apply_seconds": round(run.apply_seconds, 3),
        "concurrency": b.cfg.floor_concurrency,
        "openconnectors_calls": dict(sorted(delta.sim.items())),
        "kubernetes_requests_by_driver": keyed(delta.kube.driver),
        "cpu_seconds": cpu,
        "curve": run.curve,
    }
    if not run.all_ready:
        b.results["floor"] = result
        raise PhaseFailed(
            f"floor: only {len(run.curve)}/{b.cfg.n} objects Ready in {b.cfg.ready_timeout:.0f}s"
        )
    return result


async def create_phase(b: Bench) -> dict[str, Any]:
    n = b.cfg.n
    await prepare_namespaces(b.kube, b.workload, OPERATOR_SET, inputs=True)
    operator = await b.start_operator(profile=True)
    # The clock starts with an operator that is up and idle, as in production.
    idle = await b.settle(operator.started_at)
    memory_idle = b.memory()
    await b.start_py_spy("create")
    before, cpu_before = await b.both(), b.cpu()
    objects = b.workload.objects(OPERATOR_SET)
    async with (
        b.apiserver_profile("create"),
        ReadyTracker(b.kube, f"{SET_LABEL}={OPERATOR_SET}", n) as tracker,
    ):
        t0, _ = await apply_instances(b.kube, objects, OPERATOR_SET, b.cfg.apply_concurrency)
        apply_seconds = time.monotonic() - t0
        all_ready = await tracker.wait_all(b.cfg.ready_timeout)
    ready_seconds = max(tracker.ready_at.values()) - t0 if all_ready else None
    cpu_at_ready = b.cpu_delta(cpu_before, b.cpu())
    settled = await b.settle(t0)
    await b.stop_py_spy()
    await b.dump_memory_profile()
    delta = b.delta(before, await b.both())
    floor = (b.results.get("floor") or {}).get("seconds_to_all_ready")
    kube_per_object = per(keyed(delta.kube.operator), n)
    writes = delta.kube.operator_writes()
    event_writes = sum(
        c for (verb, res), c in delta.kube.operator.items() if res == "events" and verb in WRITE_VERBS
    )
    result: dict[str, Any] = {
        "seconds_to_all_ready": round(ready_seconds, 3) if ready_seconds is not None else None,
        "ratio_to_floor": round(ready_seconds / floor, 2) if ready_seconds and floor else None,
        "floor_seconds": floor,
        "all_ready": all_ready,
        "ready_count": len(tracker.ready_at),
        "apply_seconds": round(apply_seconds, 3),
        "seconds_to_quiet_after_first_create": settled.seconds,
        "operator_startup": {"seconds_to_health": operator.healthy_after, "seconds_to_idle": idle.seconds},
        "kubernetes_requests_per_object": kube_per_object,
        "kubernetes_writes_per_object": round(writes / n, 3),
        "kubernetes_writes_per_object_without_events": round((writes - event_writes) / n, 3),
        "openconnectors_calls_per_object": per(delta.sim, n),
        "openconnectors_posts_per_object": round(delta.sim.get("POST /instances", 0) / n, 3),
        "cpu_seconds_until_all_ready": cpu_at_ready,
        "memory_idle_before_create": memory_idle,
        "memory_after_create": b.memory(),
        "curve": tracker.curve(t0),
        "raw": delta.to_json(),
    }
    if not all_ready:
        b.results["create"] = result
        raise PhaseFailed(
            f"create: only {len(tracker.ready_at)}/{n} objects Ready in {b.cfg.ready_timeout:.0f}s"
        )
    return result
