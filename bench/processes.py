"""The simulator and the operator as child processes: start, health, stop, memory and CPU from /proc.

Every child gets a parent-death signal, so a benchmark killed outright leaves nothing behind; the
normal path (including Ctrl-C) stops them explicitly with SIGTERM and a deadline, then SIGKILL.
Waits poll a condition with a deadline; a child that exits early fails the wait with its log tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from hack.controlplane.cluster import free_port

# Fixed fake account secrets: the simulator and both the floor and the operator must agree on them.
USER_SECRET = "bench-user-secret"
ORGANIZATION_SECRET = "bench-organization-secret"
STOP_TIMEOUT = 40.0  # kopf gives daemons 30 s to stop (cancellation_timeout in handlers.instances)
HEALTH_TIMEOUT = 120.0
POLL_INTERVAL = 0.1  # how often a start-up condition is re-checked; the deadline is the sync
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: the kernel sends SIGTERM to the child when the benchmark dies.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@dataclass
class Child:
    """A child process with its log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    command: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    async def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the seconds it took to exit."""
        started = time.monotonic()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        return time.monotonic() - started

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak since start) from /proc/<pid>/status, in KiB."""
        values: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
        return values

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


async def _spawn(
    name: str, command: list[str], log_path: Path, env: dict[str, str], *, stdout_pipe: bool
) -> Child:
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            env={**os.environ, **env},
            preexec_fn=_die_with_parent,
        )
    return Child(name, process, log_path, command)


@dataclass
class Simulator:
    child: Child
    base_url: str

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/elements/api-v2"


async def start_simulator(work_dir: Path, latency_ms: int) -> Simulator:
    """`open-connectors-simulator --port 0`; returns once it announced its address."""
    command = [
        sys.executable, "-m", "open_connectors_simulator",
        "--port", "0", "--latency-ms", str(latency_ms),
        # Per-request INFO lines would cost the simulator CPU on a shared 2-core machine.
        "--log-level", "WARNING", "--exit-on-stdin-eof",
    ]  # fmt: skip
    env = {"OC_SIM_USER_SECRET": USER_SECRET, "OC_SIM_ORGANIZATION_SECRET": ORGANIZATION_SECRET}
    child = await _spawn("simulator", command, work_dir / "simulator.log", env, stdout_pipe=True)
    assert child.process.stdout is not None
    try:
        line = (await asyncio.wait_for(child.process.stdout.readline(), 30)).decode()
    except TimeoutError:
        line = ""
    if not line.startswith("listening on "):
        await child.stop()
        raise RuntimeError(f"simulator did not start: {line!r}\n{log_tail(child.log_path)}")
    return Simulator(child, line.removeprefix("listening on ").strip())


@dataclass
class Operator:
    child: Child
    health_url: str
    args: list[str]
    started_at: float
    healthy_after: float | None = None


def operator_command(namespaces: list[str], api_url: str, health_port: int, args: list[str]) -> list[str]:
    flags = [f"--namespace={ns}" for ns in namespaces]
    return [
        "-m", "connector_operator", "run", *flags,
        "--default-api-url", api_url, "--health-port", str(health_port), *args,
    ]  # fmt: skip


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
) -> Operator:
    """Start `python [wrapper] -m connector_operator run ...`; returns once /healthz answers 200.

    `wrapper` runs the operator under a profiler module (e.g. `-m pyinstrument ...`), in the same
    process, so the pid, its memory and its CPU stay the operator's."""
    port = free_port()
    command = [sys.executable, *(wrapper or []), *operator_command(namespaces, api_url, port, args)]
    started = time.monotonic()
    child = await _spawn(
        f"operator-{label}", command, work_dir / f"operator-{label}.log",
        {"KUBECONFIG": str(kubeconfig), **(env or {})}, stdout_pipe=False,
    )  # fmt: skip
    operator = Operator(child, f"http://127.0.0.1:{port}/healthz", args, started)
    try:
        operator.healthy_after = await wait_healthy(operator, HEALTH_TIMEOUT)
    except BaseException:
        await child.stop()
        raise
    return operator


async def wait_healthy(operator: Operator, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if not operator.child.alive():
                tail = log_tail(operator.child.log_path)
                raise RuntimeError(f"operator exited with {operator.child.process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(operator.health_url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return time.monotonic() - operator.started_at
            await asyncio.sleep(POLL_INTERVAL)
    raise TimeoutError(f"operator health endpoint not up after {timeout:.0f}s")


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
        child = await _spawn("py-spy", command, work_dir / "py-spy.log", {}, stdout_pipe=False)
        return cls(child)

    async def stop(self) -> None:
        if self.child.alive():
            with contextlib.suppress(ProcessLookupError):
                self.child.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.child.process.wait(), 60)
            except TimeoutError:
                await self.child.stop()
