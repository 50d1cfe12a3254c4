"""Phase `churn`: change the own config Secret of a fraction of the objects; time until each change
reaches the platform.

Each changed object reads Close.io's `username` from a Secret of its own; the phase patches all
of those Secrets concurrently and polls the simulator's control API (`GET /_sim/instances`, not
counted as platform calls) until every remote instance carries its new value. An object's
latency runs from the moment its Secret PATCH was acknowledged to the first poll that shows the
new value (so it is over-stated by up to one poll interval).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.apimetrics import keyed
from bench.context import Bench, per
from bench.phases_create import OPERATOR_SET, PhaseFailed
from bench.workload import CONFIG_KEY, SET_LABEL, Obj, bounded

POLL_INTERVAL = 0.5  # seconds between reads of the simulator's instances
CHURN_TIMEOUT = 120.0
REVISION = 1


async def churn_phase(b: Bench) -> dict[str, Any]:
    changed = [o for o in b.workload.objects(OPERATOR_SET) if o.own_secret]
    listing = await b.kube.list_instances(f"{SET_LABEL}={OPERATOR_SET}")
    instance_ids = {
        f"{i['metadata']['namespace']}/{i['metadata']['name']}": (i.get("status") or {}).get("instanceID")
        for i in listing.get("items") or []
    }
    before = await b.both()
    updated_at: dict[str, float] = {}

    async def update(obj: Obj) -> None:
        await b.kube.patch_secret_data(
            obj.namespace, obj.config_secret, {CONFIG_KEY: obj.config_value(REVISION)}
        )
        updated_at[obj.key] = time.monotonic()

    t0 = time.monotonic()
    updates = asyncio.create_task(bounded(32, changed, update))
    seen_at: dict[str, float] = {}
    try:
        while len(seen_at) < len(changed) and time.monotonic() - t0 < CHURN_TIMEOUT:
            by_id = {i["id"]: i for i in await b.control.instances()}
            now = time.monotonic()
            for obj in changed:
                remote = by_id.get(instance_ids.get(obj.key))
                username = ((remote or {}).get("configuration") or {}).get("username")
                if (
                    obj.key not in seen_at
                    and obj.key in updated_at
                    and username == obj.config_value(REVISION)
                ):
                    seen_at[obj.key] = now
            if len(seen_at) < len(changed):
                await asyncio.sleep(POLL_INTERVAL)  # polling interval; the deadline is the sync
    finally:
        await updates
    settled = await b.settle(t0)
    delta = b.delta(before, await b.both())
    latencies = sorted(seen_at[k] - updated_at[k] for k in seen_at)
    count = len(changed)
    result: dict[str, Any] = {
        "changed_objects": count,
        "propagated": len(seen_at),
        "seconds_to_all_propagated": round(max(seen_at.values()) - t0, 3) if seen_at else None,
        "update_seconds": round(max(updated_at.values()) - t0, 3) if updated_at else None,
        "latency_seconds": {
            "max": round(latencies[-1], 3) if latencies else None,
            "p50": round(statistics.median(latencies), 3) if latencies else None,
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        },
        "poll_interval_seconds": POLL_INTERVAL,
        "seconds_to_quiet": settled.seconds,
        "kubernetes_requests_per_changed_object": per(keyed(delta.kube.operator), count),
        "kubernetes_writes_per_changed_object": round(delta.kube.operator_writes() / count, 3),
        "openconnectors_calls_per_changed_object": per(delta.sim, count),
        "raw": delta.to_json(),
    }
    if len(seen_at) < count:
        b.results["churn"] = result
        raise PhaseFailed(f"churn: {count - len(seen_at)} of {count} changes never reached the simulator")
    return result
