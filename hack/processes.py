"""The simulator and the operator as child processes: start, wait until up, stop. One implementation
for the tests (tests/fixtures), the demo (hack/demo.py) and the benchmark (bench/processes.py).

- **Parent-death safety.** Every child gets a parent-death signal (SIGTERM when the thread that
  started it dies), and its stdin is a pipe held here; the simulator also runs with
  `--exit-on-stdin-eof`, so it exits when that pipe closes, however this process ends.
- **Logs.** stdout and stderr go to the child's log file (appended: an operator restarted by a test
  keeps one log), except the simulator's stdout, which carries exactly one line,
  `listening on <url>`.
- **Readiness with a deadline.** The simulator is up when it announced its URL, read with a
  timeout (a reader thread, never a readline that can block forever); the operator is up when
  its `/healthz` answers 200, polled until a deadline. The pause between polls is a wait on the
  child's exit, so a child that dies is noticed at once. A child that exits early or misses the
  deadline is stopped and the start fails with `StartupError`, naming the log and showing its tail.
- **Stopping.** SIGTERM, a deadline, then SIGKILL.

`SimulatorLauncher(...).start()` and `OperatorLauncher(...).start()` return a ready `Simulator` /
`Operator` (context managers that stop the child). Asyncio callers (the benchmark) use
`start_async()`: the same start, with the blocking wait moved to a thread. The child is spawned on
the caller's thread (spawning does not block), because the parent-death signal follows the thread
that forked it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Generic, Self, TypeVar

from hack.controlplane.cluster import die_with_parent, free_port
from open_connectors_simulator.settings import API_BASE_PATH, CONTROL_BASE_PATH

T = TypeVar("T")

STOP_TIMEOUT = 20.0
SIMULATOR_START_TIMEOUT = 30.0
OPERATOR_START_TIMEOUT = 60.0
POLL_INTERVAL = 0.1  # between health checks; the deadline, not the interval, is the synchronisation
LOG_TAIL_CHARS = 4000
ANNOUNCEMENT_PREFIX = "listening on "

# The simulator reads its account secrets from the environment: they never show up in `ps`.
USER_SECRET_ENV = "OC_SIM_USER_SECRET"
ORGANIZATION_SECRET_ENV = "OC_SIM_ORGANIZATION_SECRET"


class StartupError(RuntimeError):
    """A child exited early or did not become ready in time; the message ends with its log tail."""


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Child:
    """A started child process and its log file."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    command: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the seconds it took to exit."""
        started = time.monotonic()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipes()
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, like a node failure or an OOM kill."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)
        self._close_pipes()

    async def stop_async(self, timeout: float = STOP_TIMEOUT) -> float:
        return await asyncio.to_thread(self.stop, timeout)

    def startup_error(self, problem: str) -> StartupError:
        """Stop the child and describe why it did not start, with the tail of its log."""
        self.stop(timeout=5)
        return StartupError(
            f"{self.name} {problem} (exit status {self.process.returncode}); "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def _close_pipes(self) -> None:
        # stdin last: closing it is what tells a simulator with --exit-on-stdin-eof to go.
        for stream in (self.process.stdout, self.process.stdin):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def spawn(
    name: str,
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    stdout_pipe: bool = False,
) -> Child:
    """Start `command` with output appended to `log_path` (stdout piped instead with `stdout_pipe`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        # Popen returns as soon as the child exists: nothing here waits on the child.
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            preexec_fn=die_with_parent,
        )
    return Child(name, process, log_path, list(command))


def read_announcement(child: Child, timeout: float, prefix: str = ANNOUNCEMENT_PREFIX) -> str:
    """The rest of the child's first stdout line, which must start with `prefix`, within `timeout`."""
    stdout = child.process.stdout
    assert stdout is not None, "spawn the child with stdout_pipe=True"
    line = _first_line(stdout, timeout)
    if line is None:
        raise child.startup_error(f"announced nothing within {timeout:.0f}s")
    if not line.startswith(prefix):
        raise child.startup_error(f"did not announce its address (first line: {line!r})")
    return line[len(prefix) :].strip()


def _first_line(stream: IO[str], timeout: float) -> str | None:
    # A reader thread hands the line over a queue, so the wait has a deadline. If the deadline
    # passes, stopping the child ends the thread's readline with EOF.
    lines: queue.Queue[str] = queue.Queue(maxsize=1)
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def wait_until_ok(child: Child, url: str, timeout: float) -> float:
    """Poll `url` until it answers 200; returns the seconds waited. Fails if the child exits first."""
    started = time.monotonic()
    deadline = started + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not child.alive():
            raise child.startup_error(f"exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - a URL we built
                if response.status == 200:
                    return time.monotonic() - started
                last_error = f"status {response.status}"
        except OSError as error:
            last_error = str(error)
        # The pause between polls is a wait for the child's exit: a crash ends it at once.
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=POLL_INTERVAL)
    raise child.startup_error(f"did not answer 200 on {url} within {timeout:.0f}s ({last_error})")


class _Running:
    """A started child that is ready; stops it when used as a context manager."""

    child: Child

    @property
    def process(self) -> subprocess.Popen[str]:
        return self.child.process

    @property
    def log_path(self) -> Path:
        return self.child.log_path

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        return self.child.stop(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Launcher(Generic[T]):
    """Spawning (quick, on the caller's thread) and the blocking wait for readiness, kept apart so
    that `start()` and `start_async()` are the same code."""

    def launch(self) -> tuple[Child, Callable[[], T]]:
        raise NotImplementedError

    def start(self) -> T:
        _, ready = self.launch()
        return ready()

    async def start_async(self) -> T:
        child, ready = self.launch()
        try:
            return await asyncio.to_thread(ready)
        except BaseException:
            # Cancelled (Ctrl-C) while the thread still waits: killing the child ends that wait too.
            if child.alive():
                child.kill()
            raise


# -- the simulator ------------------------------------------------------------------------------


@dataclass
class Simulator(_Running):
    child: Child
    base_url: str  # root URL, no base path: http://127.0.0.1:<port>

    @property
    def api_url(self) -> str:
        return f"{self.base_url}{API_BASE_PATH}"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}{CONTROL_BASE_PATH}"


def simulator_command(*args: str) -> list[str]:
    # --exit-on-stdin-eof: if this process dies outright, the pipe closes and the simulator exits.
    return [sys.executable, "-m", "open_connectors_simulator", "--port", "0", "--exit-on-stdin-eof", *args]


@dataclass
class SimulatorLauncher(_Launcher[Simulator]):
    """`open-connectors-simulator --port 0 ARGS`, ready once it announced its URL."""

    log_path: Path
    user_secret: str
    organization_secret: str
    args: Sequence[str] = ()
    timeout: float = SIMULATOR_START_TIMEOUT

    def launch(self) -> tuple[Child, Callable[[], Simulator]]:
        env = {USER_SECRET_ENV: self.user_secret, ORGANIZATION_SECRET_ENV: self.organization_secret}
        child = spawn("simulator", simulator_command(*self.args), self.log_path, env=env, stdout_pipe=True)
        return child, lambda: Simulator(child, read_announcement(child, self.timeout))


# -- the operator -------------------------------------------------------------------------------


@dataclass
class Operator(_Running):
    child: Child
    health_url: str
    args: list[str]
    started_at: float  # time.monotonic() when it was spawned
    healthy_after: float | None = None  # seconds from spawn to the first 200 on /healthz


LOCAL_PLATFORM = ("--allowed-api-hosts=127.0.0.1:*", "--allow-insecure-http")


def operator_command(
    *,
    api_url: str,
    health_port: int,
    namespaces: Sequence[str] = (),
    metrics_port: int | None = None,
    args: Sequence[str] = (),
    wrapper: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """`python [wrapper] -m connector_operator run ...`; `wrapper` runs it under a profiler module
    in the same process, so the pid, its memory and its CPU stay the operator's. `python` is this
    interpreter unless another environment is wanted (the benchmark's runtime-only one).

    Every user here (tests, demo, benchmark) points the operator at a simulator on loopback over
    plain http, which production defaults refuse: LOCAL_PLATFORM allows exactly that. A test of the
    allowlist itself passes its own `--allowed-api-hosts` in `args`, which come later and win."""
    flags = [*(f"--namespace={namespace}" for namespace in namespaces), *LOCAL_PLATFORM]
    if metrics_port is not None:
        flags += ["--metrics-port", str(metrics_port)]
    return [
        python, *wrapper, "-m", "connector_operator", "run", *flags,
        "--default-api-url", api_url, "--health-port", str(health_port), *args,
    ]  # fmt: skip


@dataclass(kw_only=True)
class OperatorLauncher(_Launcher[Operator]):
    """`open-connectors-operator run` against `kubeconfig`, ready once /healthz answers 200.

    No `namespaces` means cluster-wide; `metrics_port=None` leaves the operator's default port."""

    log_path: Path
    kubeconfig: Path
    api_url: str
    namespaces: Sequence[str] = ()
    args: Sequence[str] = ()
    metrics_port: int | None = None
    wrapper: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    name: str = "operator"
    timeout: float = OPERATOR_START_TIMEOUT
    health_port: int = field(default_factory=free_port)
    python: str = sys.executable

    def launch(self) -> tuple[Child, Callable[[], Operator]]:
        command = operator_command(
            api_url=self.api_url,
            health_port=self.health_port,
            namespaces=self.namespaces,
            metrics_port=self.metrics_port,
            args=self.args,
            wrapper=self.wrapper,
            python=self.python,
        )
        started_at = time.monotonic()
        child = spawn(self.name, command, self.log_path, env={**self.env, "KUBECONFIG": str(self.kubeconfig)})
        health_url = f"http://127.0.0.1:{self.health_port}/healthz"
        operator = Operator(child, health_url, list(self.args), started_at)

        def ready() -> Operator:
            wait_until_ok(child, operator.health_url, self.timeout)
            operator.healthy_after = time.monotonic() - started_at
            return operator

        return child, ready
