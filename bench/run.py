"""`python -m bench.run`: start everything, run the selected phases, write the results, stop everything.

Order of ownership: the control plane (a context manager) encloses the asyncio run, which owns
the simulator, the operator and the clients; each is stopped in a `finally`, so a failing phase,
Ctrl-C or SIGTERM still ends every process the benchmark started (and the children carry a
parent-death signal for the case where the benchmark itself is killed). Results are written
whatever happened, with the error, so a failed run still leaves its partial numbers.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.metadata
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import plot, report
from bench.config import BenchConfig, parse_args
from bench.context import Bench
from bench.kube import KubeClient
from bench.phases_churn import churn_phase
from bench.phases_create import create_phase, floor_phase
from bench.phases_idle import memory_phase, restart_phase, steady_phase
from bench.processes import start_simulator
from bench.runtime_env import runtime_python
from bench.source import OperatorSource
from bench.source import prepare as prepare_source
from bench.workload import Workload, install_crd, warm_up
from hack.controlplane import cluster
from open_connectors_simulator.control import AsyncSimulatorControl

PHASE_FUNCTIONS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "floor": floor_phase,
    "create": create_phase,
    "steady": steady_phase,
    "restart": restart_phase,
    "churn": churn_phase,
    "memory": memory_phase,
}
STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def _summary(phase: str, data: dict[str, Any]) -> str:
    keys = {
        "floor": ("seconds_to_all_ready",),
        "create": (
            "seconds_to_all_ready",
            "ratio_to_floor",
            "kubernetes_writes_per_object",
            "openconnectors_calls_per_object",
        ),
        "restart": ("seconds_to_settled", "kubernetes_writes", "openconnectors_writes"),
        "churn": ("seconds_to_all_propagated", "latency_seconds"),
        "memory": ("rss_delta_mib",),
    }.get(phase, ())
    return ", ".join(f"{k}={data.get(k)}" for k in keys)


def environment() -> dict[str, Any]:
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    # Others may be editing the operator while the benchmark runs: say whether it ran committed code.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "operator"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return {
        "commit": git.stdout.strip() or None,
        "operator_uncommitted_changes": bool(dirty.stdout.strip()),
        "python": platform.python_version(),
        "kopf": importlib.metadata.version("kopf"),
        "kubernetes_client": importlib.metadata.version("kubernetes"),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run_phases(
    cfg: BenchConfig, plane: cluster.ControlPlane, phases: dict[str, Any], source: OperatorSource
) -> None:
    kube = KubeClient(plane.server, plane.admin_token, plane.ca_file)
    simulator = await start_simulator(cfg.work_dir, cfg.latency_ms)
    control = AsyncSimulatorControl(simulator.base_url, timeout=60)
    workload = Workload(cfg.n, cfg.namespaces, cfg.churn_fraction)
    bench = Bench(cfg, plane, kube, simulator, control, workload, results=phases, source=source)
    try:
        say(f"simulator at {simulator.api_url} (latency {cfg.latency_ms} ms)")
        await install_crd(kube)
        await warm_up(kube)
        for name in cfg.phases:
            say(f"phase {name}...")
            started = time.monotonic()
            data = await PHASE_FUNCTIONS[name](bench)
            data["phase_seconds"] = round(time.monotonic() - started, 1)
            phases[name] = data
            say(f"phase {name} done in {data['phase_seconds']} s: {_summary(name, data)}")
    finally:
        phases["_profiles"] = bench.profiles
        await bench.stop_operator()
        await simulator.child.stop_async()
        await control.aclose()
        await kube.close()


def _sigterm(signum: int, frame: object) -> None:
    # Turn SIGTERM into the same orderly unwinding as Ctrl-C: every `finally` runs.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    shutil.rmtree(cfg.work_dir, ignore_errors=True)
    cfg.work_dir.mkdir(parents=True)
    phases: dict[str, Any] = {}
    result: dict[str, Any] = {
        "schema": 1,
        "command": cfg.command,
        "parameters": cfg.to_json(),
        "started_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment(),
        "phases": phases,
    }
    say(f"{cfg.command}")
    source = OperatorSource(None, None, None)
    try:
        source = prepare_source(cfg.operator_ref, cfg.work_dir)
        if not cfg.dev_venv:  # built (once per lock) before anything is timed
            say(f"operator environment: {runtime_python(cfg.work_dir).parent.parent}")
        with cluster.running(cfg.work_dir / "controlplane") as plane:
            say(f"control plane at {plane.server}")
            asyncio.run(run_phases(cfg, plane, phases, source))
    except KeyboardInterrupt:
        result["error"] = "interrupted"
    except Exception as error:
        traceback.print_exc()
        result["error"] = f"{type(error).__name__}: {error}"
    result["profiles"] = phases.pop("_profiles", [])
    result["operator_source"] = source.to_json()
    if result["operator_source"]["changed_during_run"]:
        say("WARNING: the operator's source changed during the run; see operator_source in latest.json")
    result["duration_seconds"] = round(time.monotonic() - STARTED, 1)
    result["environment"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = report.targets(result)
    report.write(cfg.results_dir, result)
    if plot.ready_over_time(result, cfg.results_dir / "ready-over-time.png"):
        say(f"figure: {cfg.results_dir / 'ready-over-time.png'}")
    say(f"results: {cfg.results_dir / 'latest.json'}, {cfg.results_dir / 'latest.md'}")
    for t in result["targets"]:
        say(f"  {t['name']}: {t['value']} {t['unit']} (target {t['target']}) met={t['met']}")
    if result.get("error"):
        say(f"FAILED: {result['error']} (logs in {cfg.work_dir})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
