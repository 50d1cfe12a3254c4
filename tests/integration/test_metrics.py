"""The Prometheus endpoint reports what happened: calls to the platform, reconciles, object states."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.support import Env, closeio_spec


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_calls_reconciles_and_objects(env: Env) -> None:
    env.ready_inputs()
    env.simulator.control.fail_next("POST", 1, status=503)
    env.instances.create("crm", closeio_spec())
    env.instances.wait_ready("crm")

    found = samples(env.operator.metrics())
    assert found[("oco_api_requests_total", (("method", "POST"), ("status", "503")))] == 1
    assert found[("oco_api_requests_total", (("method", "POST"), ("status", "200")))] == 1
    assert found[("oco_api_request_duration_seconds_count", (("method", "POST"),))] == 2
    assert found[("oco_retries_total", (("reason", "APIUnavailable"),))] >= 1
    assert found[("oco_reconciles_total", (("result", "success"),))] >= 1
    assert found[("oco_connectorinstances", (("ready", "True"), ("reason", "Available")))] == 1
