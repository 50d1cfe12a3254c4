"""What the phases share: the clients, the running operator, and the measuring helpers.

`Bench` owns the one operator process at a time (start, stop, restart with other flags), takes
paired snapshots of both sides' counters (API server and simulator), decides when the operator
has settled, and measures fixed idle windows. Phases (bench.phases_*) only script the scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import apiprofile
from bench.apimetrics import Attribution, Snapshot, attribute, keyed, snapshot
from bench.config import BenchConfig
from bench.kube import KubeClient
from bench.processes import STOP_TIMEOUT, Operator, PySpy, Simulator, cpu_seconds, memory_kib, start_operator
from bench.runtime_env import runtime_python
from bench.source import ROOT, OperatorSource
from bench.whatif import ENV as WHATIF_ENV
from bench.workload import Workload
from hack.controlplane.cluster import ControlPlane
from open_connectors_simulator.control import AsyncSimulatorControl

SIM_WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SETTLE_POLL = 0.5  # seconds between looks at the operator's traffic and CPU while settling
SETTLE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Both:
    """A snapshot of both sides at (nearly) the same moment."""

    kube: Snapshot
    sim: dict[str, int]


@dataclass(frozen=True)
class Delta:
    kube: Attribution
    sim: dict[str, int]

    def sim_writes(self) -> int:
        return sum(v for k, v in self.sim.items() if k.split(" ", 1)[0] in SIM_WRITE_METHODS)

    def to_json(self) -> dict[str, Any]:
        return {
            "kubernetes": self.kube.to_json(),
            "openconnectors": dict(sorted(self.sim.items())),
            "openconnectors_writes": self.sim_writes(),
        }


@dataclass(frozen=True)
class Settled:
    """When the operator went quiet: seconds from the reference moment to its last observed activity."""

    seconds: float
    timed_out: bool


def per(counts: Mapping[str, float], divisor: float, digits: int = 3) -> dict[str, float]:
    return {k: round(v / divisor, digits) for k, v in counts.items() if v}


@dataclass
class Bench:
    cfg: BenchConfig
    plane: ControlPlane
    kube: KubeClient
    simulator: Simulator
    control: AsyncSimulatorControl
    workload: Workload
    operator: Operator | None = None
    starts: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)
    py_spy: PySpy | None = None
    source: OperatorSource = field(default_factory=lambda: OperatorSource(None, None, None))
    started_at: float = field(default_factory=time.monotonic)

    @property
    def default_args(self) -> list[str]:
        return list(self.cfg.operator_args)

    async def start_operator(self, args: list[str] | None = None, *, profile: bool = False) -> Operator:
        """Start the operator (one at a time); with `profile`, under the profiler `--profile` names
        if that one wraps the process (pyinstrument, tracemalloc); py-spy attaches separately."""
        assert self.operator is None, "one operator at a time"
        self.starts += 1
        label = f"{self.starts}"
        wrapper, env = None, {}
        python = sys.executable if self.cfg.dev_venv else str(runtime_python(self.cfg.work_dir))
        # The runtime venv has no operator installed: its code comes first on PYTHONPATH.
        code = self.source.python_path or (None if self.cfg.dev_venv else ROOT / "operator")
        if code is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
        self.source.record_start(label, time.monotonic() - self.started_at)
        if self.cfg.whatif:
            wrapper = ["-m", "bench.whatif"]
            env[WHATIF_ENV] = ",".join(self.cfg.whatif)
        elif profile and self.cfg.profile in ("pyinstrument", "tracemalloc"):
            output = self.profile_path(f"{self.cfg.profile}-operator-{label}.txt")
            wrapper = (
                ["-m", "pyinstrument", "-r", "text", "-o", str(output)]
                if self.cfg.profile == "pyinstrument"
                else ["-m", "bench.memprobe", str(output)]
            )
            self.profiles.append(str(output))
        self.operator = await start_operator(
            work_dir=self.cfg.work_dir,
            kubeconfig=self.plane.kubeconfig,
            namespaces=self.workload.namespaces("operator"),
            api_url=self.simulator.api_url,
            args=self.default_args if args is None else args,
            label=label,
            wrapper=wrapper,
            env=env,
            python=python,
        )
        return self.operator

    def profile_path(self, name: str) -> Path:
        path = self.cfg.results_dir / "profiles" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    async def dump_memory_profile(self, timeout: float = 120.0) -> None:
        """Ask a tracemalloc-wrapped operator (bench.memprobe) for its allocation sites, and wait."""
        if self.cfg.profile != "tracemalloc" or self.operator is None or not self.profiles:
            return
        output = Path(self.profiles[-1])
        await asyncio.to_thread(output.unlink, missing_ok=True)
        self.operator.child.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(output.exists):
                return
            await asyncio.sleep(0.2)  # polling for the file; the deadline is the synchronisation
        raise TimeoutError(f"no tracemalloc dump at {output} after {timeout:.0f}s")

    async def stop_operator(self) -> float:
        """SIGTERM the operator; returns how long it took to exit."""
        if self.operator is None:
            return 0.0
        await self.stop_py_spy()
        operator, self.operator = self.operator, None
        return await operator.child.stop_async(STOP_TIMEOUT)

    def apiserver_profile(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """With `--profile apiserver`, a CPU profile of kube-apiserver over the block (apiprofile.py)."""
        if self.cfg.profile != "apiserver":
            return contextlib.nullcontext()
        output = self.profile_path(f"apiserver-{name}.pb.gz")
        self.profiles.append(str(output))
        return apiprofile.apiserver_profile(self.kube, output, apiprofile.DEFAULT_SECONDS)

    async def start_py_spy(self, name: str) -> None:
        if self.cfg.profile != "py-spy" or self.operator is None:
            return
        output = self.profile_path(f"py-spy-{name}.speedscope.json")
        self.py_spy = await PySpy.record(self.operator.child.pid, output, self.cfg.work_dir)
        self.profiles.append(str(output))

    async def stop_py_spy(self) -> None:
        if self.py_spy is not None:
            await self.py_spy.stop()
            self.py_spy = None

    async def both(self) -> Both:
        return Both(await snapshot(self.kube), await self.control.counters())

    @staticmethod
    def delta(before: Both, after: Both) -> Delta:
        sim = {k: after.sim.get(k, 0) - before.sim.get(k, 0) for k in set(before.sim) | set(after.sim)}
        return Delta(attribute(before.kube, after.kube), {k: v for k, v in sim.items() if v})

    async def settle(self, since: float, *, timeout: float = SETTLE_TIMEOUT) -> Settled:
        """Wait until, for `quiet_seconds`, the operator makes no API-server request (watches aside)
        and uses less than `idle_cpu` of a core; return when its last activity was seen.

        API quiet alone is not enough: a restarted operator serves its objects from its caches, so
        it can be busy for seconds without a single request. Its CPU time shows that work."""
        operator = self.operator
        assert operator is not None
        started = time.monotonic()
        previous = await snapshot(self.kube)
        previous_cpu = cpu_seconds(operator.child.pid)
        last_busy = started
        while time.monotonic() - started < timeout:
            await asyncio.sleep(SETTLE_POLL)
            current = await snapshot(self.kube)
            cpu = cpu_seconds(operator.child.pid)
            requests = attribute(previous, current).operator_total(include_watch=False)
            cpu_rate = (cpu - previous_cpu) / max(1e-3, current.at - previous.at)
            now = time.monotonic()
            if requests > 0 or cpu_rate > self.cfg.idle_cpu:
                last_busy = now
            elif now - last_busy >= self.cfg.quiet_seconds:
                return Settled(round(last_busy - since, 3), False)
            previous, previous_cpu = current, cpu
        return Settled(round(last_busy - since, 3), True)

    async def window(self, seconds: float) -> dict[str, Any]:
        """A fixed idle measurement window: requests per minute to each side."""
        before = await self.both()
        cpu_before = cpu_seconds(self.operator.child.pid) if self.operator else 0.0
        await asyncio.sleep(seconds)  # the measurement window itself, not a synchronisation
        after = await self.both()
        cpu_after = cpu_seconds(self.operator.child.pid) if self.operator else 0.0
        delta = self.delta(before, after)
        minutes = delta.kube.seconds / 60
        return {
            "window_seconds": round(delta.kube.seconds, 1),
            "kubernetes_per_minute": per(keyed(delta.kube.operator), minutes, 2),
            "kubernetes_writes": delta.kube.operator_writes(),
            "openconnectors_per_minute": per(delta.sim, minutes, 2),
            "openconnectors_writes": delta.sim_writes(),
            "operator_cpu_percent": round(100 * (cpu_after - cpu_before) / delta.kube.seconds, 2),
            "raw": delta.to_json(),
        }

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the benchmark, the driver (this one) included."""
        used = {"driver": time.process_time(), "simulator": cpu_seconds(self.simulator.child.pid)}
        if self.operator is not None:
            used["operator"] = cpu_seconds(self.operator.child.pid)
        for process in self.plane.processes:
            args = process.args
            program = args[0] if isinstance(args, list | tuple) else args
            used[Path(str(program)).name] = cpu_seconds(process.pid)
        return used

    @staticmethod
    def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before.get(k, 0.0), 2) for k in after}

    def memory(self) -> dict[str, float]:
        """The operator's RSS now and its peak (VmHWM) since it started, in MiB."""
        if self.operator is None:
            return {}
        kib = memory_kib(self.operator.child.pid)
        return {
            "rss_mib": round(kib.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mib": round(kib.get("VmHWM", 0) / 1024, 1),
        }

    async def restart(self, args: list[str] | None = None) -> dict[str, Any]:
        """Stop the operator (SIGTERM) and start it again; time each step and wait until settled."""
        before = await self.both()
        stop_seconds = await self.stop_operator()
        # tracemalloc must trace from the start to attribute a restarted operator's memory.
        operator = await self.start_operator(args, profile=self.cfg.profile == "tracemalloc")
        settled = await self.settle(operator.started_at)
        await self.dump_memory_profile()
        after = await self.both()
        delta = self.delta(before, after)
        return {
            "stop_seconds": round(stop_seconds, 3),
            "seconds_to_health": round(operator.healthy_after or 0.0, 3),
            "seconds_to_settled": settled.seconds,
            "settle_timed_out": settled.timed_out,
            "kubernetes_writes": delta.kube.operator_writes(),
            "openconnectors_writes": delta.sim_writes(),
            "memory_at_settled": self.memory(),
            "args": operator.args,
            "raw": delta.to_json(),
        }
