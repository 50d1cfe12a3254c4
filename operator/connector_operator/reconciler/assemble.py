"""The composition root: the one place that builds the `Runtime` and wires every callback.

The operator calls `assemble` at start-up (handlers/setup.py) with the kopf shell's Events sink
and stop flag; the direct tests (tests/reconciler/) call it with their own sink, and so run the
passes with the very wiring the operator has.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from connector_operator import metrics
from connector_operator.engine.objects import EventSink
from connector_operator.engine.scheduler import Scheduler
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.namespaces import Namespaces
from connector_operator.kube.secrets import Secrets
from connector_operator.kube.status import StatusWriter
from connector_operator.openconnectors.client import InstancesClient
from connector_operator.reconciler import account, series
from connector_operator.reconciler.instance import run_pass
from connector_operator.reconciler.runtime import Runtime
from connector_operator.reconciler.strays import StrayReports
from connector_operator.settings import Settings

# After a pass raised (a bug, not an outcome): kopf's own retry delay for a failed handler, at most.
FAILURE_DELAY = 60.0


def assemble(
    settings: Settings,
    api: KubeAPI,
    *,
    digest_key: bytes,
    home: str,
    events: EventSink,
    stop: asyncio.Future[Any] | None = None,
) -> Runtime:
    runtime = Runtime(
        settings=settings,
        digest_key=digest_key,
        instances=InstancesClient(
            timeout=settings.request_timeout,
            max_in_flight=settings.max_in_flight,
            max_in_flight_per_host=min(settings.max_in_flight_per_host, settings.max_in_flight),
            observer=metrics.observe_api_call,
        ),
        secrets=Secrets(api),
        status=StatusWriter(api),
        namespaces=Namespaces(api),
        home=home,
        kube=api,
    )
    metrics.SERIES.configure(settings.object_metrics, settings.object_metrics_max_series)
    wire(runtime, events, stop)
    return runtime


def wire(runtime: Runtime, events: EventSink, stop: asyncio.Future[Any] | None = None) -> None:
    """Every callback of the process, in one list."""
    runtime.events = events
    runtime.scheduler = Scheduler(
        functools.partial(run_pass, runtime), failure_delay=min(FAILURE_DELAY, runtime.settings.backoff_cap)
    )
    # A wake-up for a key without an Event of its own (an account's loop) is an object's pass.
    runtime.wakeups.fallback = runtime.scheduler.wake
    runtime.strays = StrayReports(runtime.accounts, runtime.wakeups.wake, events)
    # A platform that answers again ends the wait of the deletions that failed on it.
    runtime.instances.on_success(
        lambda host, credentials: runtime.delete_retries.platform_answered(
            runtime.status, (host, credentials)
        )
    )
    # An account's platform answers again: its loop wakes everyone waiting, deletions too.
    runtime.gates.on_recovery(lambda key: account.recovered(runtime, key))
    metrics.SERIES.budget_waits = functools.partial(series.budget_waits, runtime.gates)
    if stop is not None:
        # Asked to stop: start no pass from here on. The peering record is withdrawn at once
        # (kube/keepalive.py), and the next copy may start working before this one has exited.
        stop.add_done_callback(lambda _: runtime.scheduler.halt())
