"""The Prometheus endpoint reports what happened: calls to the platform, reconciles, object states."""

from __future__ import annotations

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.operator import Instances, OperatorProcess
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import closeio_spec, ready_inputs


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_calls_reconciles_and_objects(
    operator: OperatorProcess,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    ready_inputs(core, namespace, simulator)
    simulator.control.fail_next("POST", 1, status=503)
    instances.create("crm", closeio_spec())
    instances.wait_ready("crm")

    found = samples(operator.metrics())
    assert found[("oco_api_requests_total", (("method", "POST"), ("status", "503")))] == 1
    assert found[("oco_api_requests_total", (("method", "POST"), ("status", "200")))] == 1
    assert found[("oco_api_request_duration_seconds_count", (("method", "POST"),))] == 2
    assert found[("oco_retries_total", (("reason", "APIUnavailable"),))] >= 1
    assert found[("oco_reconciles_total", (("result", "success"),))] >= 1
    assert found[("oco_connectorinstances", (("ready", "True"), ("reason", "Available")))] == 1
