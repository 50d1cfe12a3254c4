"""shutdown.py: signals, the grace period and the deadline, with real signals.

`run_operator` runs in the test's main thread (only the main thread receives signals); each
operator coroutine here sends the signal itself once it runs, so nothing waits on a guess.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from connector_operator.shutdown import StopFlag, run_operator


def signal_self(signum: signal.Signals = signal.SIGTERM) -> None:
    os.kill(os.getpid(), signum)


def test_the_operator_ending_on_its_own_ends_the_process_cleanly() -> None:
    async def operator(flag: StopFlag) -> None:
        return None

    assert run_operator(operator) == 0


def test_a_failed_operator_exits_1_with_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    async def operator(flag: StopFlag) -> None:
        raise RuntimeError("startup failed")

    assert run_operator(operator) == 1
    assert "RuntimeError: startup failed" in capsys.readouterr().err


def test_sigterm_raises_the_stop_flag_with_the_signal() -> None:
    received: list[signal.Signals] = []

    async def operator(flag: StopFlag) -> None:
        signal_self()
        received.append(await flag)

    assert run_operator(operator) == 0
    assert received == [signal.SIGTERM]


def test_a_shutdown_longer_than_the_grace_period_is_cancelled() -> None:
    async def operator(flag: StopFlag) -> None:
        signal_self()
        await flag
        await asyncio.Event().wait()  # a shutdown step that never ends (a request that hangs)

    started = time.monotonic()
    assert run_operator(operator, grace=0.2, deadline=5) == 0
    assert time.monotonic() - started < 2


class Release:
    """Ends a coroutine abandoned by run_operator (its thread lives on) once the test has its answer."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None

    async def wait(self) -> None:
        self.loop, self.event = asyncio.get_running_loop(), asyncio.Event()
        await self.event.wait()

    def __call__(self) -> None:
        if self.loop is not None and self.event is not None:
            self.loop.call_soon_threadsafe(self.event.set)


def test_a_shutdown_that_ignores_cancellation_meets_the_deadline() -> None:
    release = Release()

    async def operator(flag: StopFlag) -> None:
        signal_self()
        await flag
        while True:  # swallows every cancellation: only the deadline ends this
            try:
                return await release.wait()
            except asyncio.CancelledError:
                continue

    started = time.monotonic()
    try:
        assert run_operator(operator, grace=0.1, deadline=0.5) == 1
        assert 0.5 <= time.monotonic() - started < 2
    finally:
        release()


def test_a_second_signal_ends_the_stop_at_once() -> None:
    release = Release()

    async def operator(flag: StopFlag) -> None:
        signal_self()
        await flag
        signal_self(signal.SIGINT)
        await release.wait()

    try:
        assert run_operator(operator, grace=30, deadline=30) == 128 + signal.SIGINT
    finally:
        release()


def test_signals_that_land_on_the_operator_s_thread_are_seen() -> None:
    """The kernel may deliver a process signal to any thread; its Python handler still runs on the
    main thread, but only once that thread runs again (it was blocked until the deadline)."""
    release = Release()

    async def operator(flag: StopFlag) -> None:
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        await flag
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        await release.wait()

    try:
        assert run_operator(operator, grace=30, deadline=30) == 128 + signal.SIGINT
    finally:
        release()


def test_the_signal_handlers_are_restored_afterwards() -> None:
    before = signal.getsignal(signal.SIGTERM)

    async def operator(flag: StopFlag) -> None:
        return None

    run_operator(operator)
    assert signal.getsignal(signal.SIGTERM) is before


def test_before_the_operator_runs_a_signal_ends_the_process_at_once() -> None:
    """exit_on_signals(): PID 1 would otherwise ignore a SIGTERM during the imports."""
    code = (
        "import os, signal, time\n"
        "from connector_operator import shutdown\n"
        "shutdown.exit_on_signals()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=False)
    assert done.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 10
