"""Phases with nothing changing: `steady` (idle traffic), `restart` and `memory` (unrelated Secrets).

`steady` measures a fixed window with the operator as started, then restarts it with a short
`--resync-interval` and measures again, so that the per-object periodic GET becomes visible.
It leaves that short-resync operator running when `restart` follows (which starts the default
one again), and restores the default flags itself otherwise.

`restart` stops the operator with SIGTERM and starts it again. Settled means: the health endpoint
answers, and then for `--quiet-seconds` the operator has made no API-server request (watches
aside) and used less than `--idle-cpu` of a core. Its first pass over every object shows as CPU
even when it needs no request, so this is "all objects processed", observed from outside.

`memory` compares the RSS of a freshly restarted, settled operator without and with
`--unrelated-secrets` Secrets (unlabelled, referenced by nobody) in the watched namespaces, at
the same N; both measurements are taken within this phase, back to back.
"""

from __future__ import annotations

from typing import Any

from bench.context import Bench
from bench.workload import create_unrelated_secrets


async def steady_phase(b: Bench) -> dict[str, Any]:
    as_started = await b.window(b.cfg.steady_window)
    as_started["operator_args"] = b.default_args
    as_started["note"] = "objects were Ready within the last minutes: their first resync is not yet due"
    short_args = [*b.default_args, f"--resync-interval={b.cfg.short_resync:g}"]
    restart = await b.restart(short_args)
    short = await b.window(b.cfg.steady_window)
    short["operator_args"] = short_args
    short["restart_into_it"] = restart
    if "restart" not in b.cfg.phases:
        await b.restart()  # later phases expect the operator with the flags the run was given
    return {"default_resync": as_started, "short_resync": short}


async def restart_phase(b: Bench) -> dict[str, Any]:
    result = await b.restart()
    result["settled_definition"] = (
        f"health endpoint up, then {b.cfg.quiet_seconds:g} s without operator API requests (watches "
        f"aside) and under {b.cfg.idle_cpu:g} core of CPU; seconds are from process start to the last "
        "activity seen (0.5 s polls)"
    )
    return result


async def memory_phase(b: Bench) -> dict[str, Any]:
    without = await b.restart()
    namespaces = b.workload.namespaces("operator")
    count = await create_unrelated_secrets(b.kube, namespaces, b.cfg.unrelated_secrets)
    with_noise = await b.restart()
    base, noisy = without["memory_at_settled"], with_noise["memory_at_settled"]
    return {
        "n": b.cfg.n,
        "unrelated_secrets": count,
        "without": {"memory": base, "seconds_to_settled": without["seconds_to_settled"]},
        "with": {
            "memory": noisy,
            "seconds_to_settled": with_noise["seconds_to_settled"],
            "kubernetes_requests": with_noise["raw"]["kubernetes"]["operator"],
        },
        "rss_delta_mib": round(noisy.get("rss_mib", 0) - base.get("rss_mib", 0), 1),
        "peak_rss_delta_mib": round(noisy.get("peak_rss_mib", 0) - base.get("peak_rss_mib", 0), 1),
    }
