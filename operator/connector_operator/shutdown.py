"""How the operator process stops: signals on the main thread, kopf on a thread of its own, and a
hard bound on the time a stop may take.

In its container the operator is PID 1, and the kubelet gives it `terminationGracePeriodSeconds`
between SIGTERM and SIGKILL. Three things made a stop slow or lost before:

- PID 1 ignores every signal it has no handler for. kopf installs its handlers once its event loop
  runs, a second or more after the start (imports), so a SIGTERM before that did nothing at all.
  `exit_on_signals()`, called before the heavy imports, ends the process at once instead: there is
  nothing to clean up yet.
- A DNS lookup runs in a thread (getaddrinfo cannot be cancelled), and Python waits for such
  threads when the event loop closes and when the interpreter exits: with an unreachable DNS
  server every stop took as long as the lookup's timeouts (ten seconds by default, longer with
  other resolver options). So the process ends with `exit_process()` once kopf's own shutdown
  (daemons stopped, clean-up handlers run, the peering record withdrawn) is over, without waiting
  for threads that hold nothing of value.
- kopf's shutdown itself has waits of its own: five seconds for tasks still running after its own
  have stopped (aiohttp keeps a DNS lookup running in a task of its own, so a stop while the DNS
  server does not answer always took them), up to a daemon's cancellation timeout, an API request
  to withdraw the peering record while the API server does not answer. `run_operator()` gives it
  `STOP_GRACE` seconds after the signal, then cancels what is left of it (kopf then cancels its
  tasks at once), and ends the process `STOP_DEADLINE` seconds after the signal whatever happens,
  saying so. A second signal ends it at once.

kopf runs on a thread because only the main thread receives signals: kopf then leaves the signals
to us (it says so in a warning, which is filtered out) and stops when the flag we hand it is set,
the documented way to embed it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import NoReturn

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_GRACE = 3.0
"""Seconds kopf's own shutdown may take before what is left of it is cancelled. A normal stop takes
well under one (a handler cut off mid-request: two, kopf's own wait for its workers)."""
STOP_DEADLINE = 10.0
"""Seconds from the stop signal to the end of the process, whatever state it is in. A third of the
Helm chart's terminationGracePeriodSeconds (30): the kubelet never has to kill it."""

# A stop flag kopf understands (kopf.operator(stop_flag=...)); the operator is handed it to pass on.
StopFlag = asyncio.Future[signal.Signals]
Operator = Callable[[StopFlag], Awaitable[None]]


def exit_on_signals() -> None:
    """Until `run_operator` takes over, SIGTERM and SIGINT end the process at once."""
    for signum in SIGNALS:
        signal.signal(signum, _exit_now)


def _exit_now(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_process(status: int) -> NoReturn:
    """End the process now: logs flushed, no waiting for threads (see the module docstring)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


class _KopfSignalWarning(logging.Filter):
    """kopf warns that it ignores OS signals when it is not on the main thread: here that is the
    design, and the warning would only mislead whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("OS signals are ignored")


class _Stopper:
    """Hands a signal from the main thread to the operator's event loop, which may not exist yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flag: StopFlag | None = None
        self._signal: signal.Signals | None = None

    def flag(self) -> StopFlag:
        """Called on the operator's loop, once, before the operator starts."""
        loop = asyncio.get_running_loop()
        flag: StopFlag = loop.create_future()
        with self._lock:
            self._loop, self._flag = loop, flag
            if self._signal is not None:  # the signal came before the loop did
                _raise(flag, self._signal)
        return flag

    def stop(self, signum: signal.Signals) -> None:
        with self._lock:
            self._signal = signum
            loop, flag = self._loop, self._flag
        if loop is not None and flag is not None:
            loop.call_soon_threadsafe(_raise, flag, signum)


def _raise(flag: StopFlag, signum: signal.Signals) -> None:
    if not flag.done():
        flag.set_result(signum)


def run_operator(operator: Operator, *, grace: float = STOP_GRACE, deadline: float = STOP_DEADLINE) -> int:
    """Run `operator(stop_flag)` on its own thread and event loop until it ends, or until a signal
    stops it (cancelled after `grace` seconds, abandoned after `deadline`). Returns the exit status
    for `exit_process()`: 0 after a stop, 1 when the operator failed or missed the deadline, 128+n
    after a second signal n."""
    # Filled from signal handlers and the operator's thread: SimpleQueue.put is reentrant.
    events: queue.SimpleQueue[int | None] = queue.SimpleQueue()  # a signal, or None: operator ended
    failures: list[BaseException] = []
    stopper = _Stopper()

    async def operate() -> None:
        try:
            await _within_grace(operator, stopper.flag(), grace)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            events.put(None)  # before the event loop's own teardown, which may wait for threads

    quiet = _KopfSignalWarning()
    logging.getLogger("kopf._core.reactor.running").addFilter(quiet)
    previous = {signum: signal.signal(signum, lambda n, _: events.put(n)) for signum in SIGNALS}
    try:
        threading.Thread(target=asyncio.run, args=(operate(),), name="operator", daemon=True).start()
        event = _next(events, math.inf)
        if event is not None:
            status = _stop(stopper, signal.Signals(event), events, deadline)
            if status is not None:
                return status
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        logging.getLogger("kopf._core.reactor.running").removeFilter(quiet)
    for failure in failures:
        traceback.print_exception(failure)
    return 1 if failures else 0


async def _within_grace(operator: Operator, flag: StopFlag, grace: float) -> None:
    """The operator, cancelled when it is still running `grace` seconds after the stop flag."""
    task = asyncio.ensure_future(operator(flag))
    forced = False

    def force() -> None:
        nonlocal forced
        if not task.done():
            logger.warning("the shutdown has not finished within %.0f s: cancelling what is left", grace)
            forced = True
            task.cancel()

    loop = asyncio.get_running_loop()
    flag.add_done_callback(lambda _: loop.call_later(grace, force))
    try:
        await task
    except asyncio.CancelledError:
        if not forced:
            raise


def _stop(
    stopper: _Stopper, signum: signal.Signals, events: queue.SimpleQueue[int | None], deadline: float
) -> int | None:
    """Ask the operator to stop, and wait for it until the deadline. None: it stopped in time."""
    stopper.stop(signum)
    try:
        event = _next(events, deadline)
    except queue.Empty:
        logger.error("the operator did not stop within %.0f s of %s: exiting now", deadline, signum.name)
        return 1
    if event is None:
        return None
    logger.warning("%s during the stop: exiting now", signal.Signals(event).name)
    return 128 + event


# A signal the kernel delivers to another thread runs its Python handler on the main thread only
# when that thread next runs bytecode: a main thread blocked on a lock all along never would.
# Waking it this often bounds how late a signal is seen (a second SIGTERM, found late in a test).
SIGNAL_POLL = 0.2


def _next(events: queue.SimpleQueue[int | None], timeout: float) -> int | None:
    """The next signal or end of the operator within `timeout` seconds (queue.Empty if none)."""
    ends = time.monotonic() + timeout
    while True:
        try:
            return events.get(timeout=max(0.0, min(SIGNAL_POLL, ends - time.monotonic())))
        except queue.Empty:
            if time.monotonic() >= ends:
                raise
