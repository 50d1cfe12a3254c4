"""Prometheus metrics, on their own port (prometheus-client: the reference implementation).

Every metric is documented in the README. They live in a registry of their own, so the
process's default collectors stay opt-in and tests can read exactly what the operator exports.

    oco_reconciles_total{result}                 reconcile passes by result: success, retrying, stalled
    oco_reconcile_duration_seconds{result}       duration of one reconcile pass
    oco_api_requests_total{method,status}        Open Connectors calls; status is the HTTP code,
                                                 or `timeout` / `network` when no answer came
    oco_api_request_duration_seconds{method}     latency of Open Connectors calls
    oco_retries_total{reason}                    retries scheduled, by condition reason
    oco_rate_limit_wait_seconds_total            seconds spent waiting on the platform's Retry-After
    oco_connectorinstances{ready,reason}         objects by their Ready condition, as last reconciled
    oco_stray_instances{host}                    remote instances with this operator's marks but no
                                                 live object, at endpoints without an account (an
                                                 account reports its own in status.strayInstances)
    oco_time_to_ready_seconds{cause}             from creation (cause `create`) or a spec change
                                                 (`update`) to Ready for that generation

The per-object series (one set per ConnectorInstance and account) are `objects.py`'s.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from connector_operator.metrics.objects import ObjectSeries

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter("oco_reconciles", "Reconcile passes by result.", ["result"], registry=REGISTRY)
RECONCILE_SECONDS = Histogram(
    "oco_reconcile_duration_seconds", "Duration of one reconcile pass.", ["result"], registry=REGISTRY
)
API_REQUESTS = Counter(
    "oco_api_requests",
    "Open Connectors API calls by method and status.",
    ["method", "status"],
    registry=REGISTRY,
)
API_SECONDS = Histogram(
    "oco_api_request_duration_seconds", "Latency of Open Connectors API calls.", ["method"], registry=REGISTRY
)
RETRIES = Counter("oco_retries", "Retries scheduled, by condition reason.", ["reason"], registry=REGISTRY)
RATE_LIMIT_WAIT = Counter(
    "oco_rate_limit_wait_seconds", "Seconds spent waiting on the platform's Retry-After.", registry=REGISTRY
)

STRAY_INSTANCES = Gauge(
    "oco_stray_instances",
    "Remote instances carrying this operator's identity or claim tags that belong to no live object, "
    "as last listed, at endpoints without an account.",
    ["host"],
    registry=REGISTRY,
)


class ObjectStates(Collector):
    """Objects by Ready status and reason, computed at scrape time from the passes' last verdicts."""

    def __init__(self) -> None:
        self.states: dict[tuple[str, str], tuple[str, str]] = {}
        self._writing = threading.Lock()  # the loop writes, a scrape's thread counts (objects.py)

    def set(self, key: tuple[str, str], ready: bool, reason: str) -> None:
        with self._writing:
            self.states[key] = ("True" if ready else "False", reason)

    def forget(self, key: tuple[str, str]) -> None:
        with self._writing:
            self.states.pop(key, None)

    def clear(self) -> None:
        with self._writing:
            self.states.clear()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "oco_connectorinstances",
            "ConnectorInstances by Ready status and reason.",
            labels=["ready", "reason"],
        )
        with self._writing:
            counts = Tally(self.states.values())
        for (ready, reason), count in sorted(counts.items()):
            family.add_metric([ready, reason], count)
        yield family


OBJECTS = ObjectStates()
REGISTRY.register(OBJECTS)

# Minutes matter here, not milliseconds: a create is a few calls, but a Secret or an account may
# keep an object waiting for as long as its team takes.
TIME_TO_READY = Histogram(
    "oco_time_to_ready_seconds",
    "Seconds from creation or a spec change to Ready for that generation.",
    ["cause"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
    registry=REGISTRY,
)

SERIES = ObjectSeries()
REGISTRY.register(SERIES)


def observe_api_call(method: str, status: str, seconds: float) -> None:
    API_REQUESTS.labels(method, status).inc()
    API_SECONDS.labels(method).observe(seconds)


def serve(port: int) -> None:
    start_http_server(port, registry=REGISTRY)
