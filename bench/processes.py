"""The benchmark's child processes: the simulator and the operator (started, awaited and stopped by
hack/processes.py, the same code the tests and the demo use), py-spy, and CPU and memory samples
of any pid from /proc.

Every child gets a parent-death signal, so a benchmark killed outright leaves nothing behind; the
normal path (including Ctrl-C) stops them explicitly with SIGTERM and a deadline, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from hack.processes import Child, Operator, OperatorLauncher, Simulator, SimulatorLauncher, spawn

# Fixed fake account secrets: the simulator and both the floor and the operator must agree on them.
USER_SECRET = "bench-user-secret"
ORGANIZATION_SECRET = "bench-organization-secret"
STOP_TIMEOUT = 40.0  # kopf gives daemons 30 s to stop (cancellation_timeout in handlers.instances)
HEALTH_TIMEOUT = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

__all__ = ["Operator", "PySpy", "Simulator", "cpu_seconds", "memory_kib", "start_operator", "start_simulator"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start) from /proc/<pid>/status, in KiB."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


async def start_simulator(work_dir: Path, latency_ms: int) -> Simulator:
    """`open-connectors-simulator --port 0`; returns once it announced its address."""
    return await SimulatorLauncher(
        work_dir / "simulator.log",
        user_secret=USER_SECRET,
        organization_secret=ORGANIZATION_SECRET,
        # Per-request INFO lines would cost the simulator CPU on a shared 2-core machine.
        args=["--latency-ms", str(latency_ms), "--log-level", "WARNING"],
    ).start_async()


async def start_operator(
    *,
    work_dir: Path,
    kubeconfig: Path,
    namespaces: list[str],
    api_url: str,
    args: list[str],
    label: str,
    wrapper: list[str] | None = None,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
) -> Operator:
    """Start `python [wrapper] -m connector_operator run ...`; returns once /healthz answers 200.

    `wrapper` runs the operator under a profiler module (e.g. `-m pyinstrument ...`), in the same
    process, so the pid, its memory and its CPU stay the operator's."""
    return await OperatorLauncher(
        log_path=work_dir / f"operator-{label}.log",
        kubeconfig=kubeconfig,
        api_url=api_url,
        namespaces=namespaces,
        args=args,
        wrapper=wrapper or [],
        env=env or {},
        name=f"operator-{label}",
        timeout=HEALTH_TIMEOUT,
        python=python,
    ).start_async()


class PySpy:
    """`py-spy record` on a pid until stopped (SIGINT makes it write its flame graph)."""

    def __init__(self, child: Child) -> None:
        self.child = child

    @classmethod
    async def record(cls, pid: int, output: Path, work_dir: Path, rate: int = 50) -> PySpy:
        command = [
            str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
            # --nonblocking: do not pause the operator for each sample, so timings stay honest.
            "--nonblocking", "--rate", str(rate), "--format", "speedscope", "-o", str(output),
        ]  # fmt: skip
        return cls(spawn("py-spy", command, work_dir / "py-spy.log"))

    async def stop(self) -> None:
        if self.child.alive():
            with contextlib.suppress(ProcessLookupError):
                self.child.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.child.process.wait, 60)
            except subprocess.TimeoutExpired:
                await self.child.stop_async()
