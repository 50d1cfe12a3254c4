"""An account's request budget and circuit breaker, with the operator as a process (issue 10).

- A budget of 5 requests per second holds under a burst of 100 creates, measured from the
  simulator's own request log (arrival times), not from the operator's counters.
- Under 100% 503 the account's circuit opens: its instances report AccountUnavailable and stop
  calling the platform (only the half-open probes go out), the account says CircuitOpen; after
  recovery the circuit closes and every instance becomes Ready.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from connector_operator.openconnectors.budget import Budget
from tests.fixtures.operator import wait_until
from tests.integration.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    densest_window_excess,
    put_secret,
    team_account,
    team_instance_spec,
)

GROUP, VERSION = "openconnectors.io", "v1beta1"


def ready_count(env: Env, names: list[str]) -> int:
    return sum(1 for name in names if env.instances.condition(name, "Ready").get("status") == "True")


@pytest.mark.manual_operator
@pytest.mark.slow
def test_an_account_budget_of_5_per_second_holds_under_a_burst_of_100_creates(
    env: Env, custom: client.CustomObjectsApi
) -> None:
    env.start_operator()
    team_account(env, custom, {"requestsPerSecond": 5, "burst": 5, "maxInFlight": 10})
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.simulator.control.reset_counters()  # also clears the request log
    names = [f"crm-{n}" for n in range(100)]
    for name in names:
        env.instances.create(name, team_instance_spec())
    wait_until(lambda: ready_count(env, names) == len(names), timeout=180, what="100 instances Ready")

    # The creates: what the 100 objects need of the budget (the searches before them and the
    # account's own checks share it, and only make the creates arrive later).
    times = sorted(r["at"] for r in env.simulator.control.requests() if r["method"] == "POST")
    assert len(times) == 100
    # Arrival times are stamped by the simulator's event loop; on a loaded machine a pause there
    # bunches a few arrivals together. Half a second of slack (2.5 calls) allows for that only.
    assert densest_window_excess(times, Budget(requests_per_second=5, burst=5, max_in_flight=10)) <= 2.5


def retries(env: Env, reason: str) -> float:
    assert env.operator is not None
    for family in text_string_to_metric_families(env.operator.metrics()):
        for sample in family.samples:
            if sample.name == "oco_retries_total" and sample.labels.get("reason") == reason:
                return sample.value
    return 0.0


@pytest.mark.slow
def test_the_account_circuit_opens_under_503s_and_closes_after_recovery(
    env: Env, custom: client.CustomObjectsApi
) -> None:
    team_account(env, custom, None)
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    wait_until(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, env.namespace, "connectoraccounts", "team"
                ).get("status")
                or {}
            ).get("conditions")
            or []
        ),
        what="the account verified",
    )
    env.simulator.control.set_error_rate({"GET": 1.0, "POST": 1.0, "PUT": 1.0, "DELETE": 1.0}, status=503)
    names = [f"crm-{n}" for n in range(20)]
    for name in names:
        env.instances.create(name, team_instance_spec())
    for name in names:
        env.instances.wait_condition(name, "Reconciling", "True", reason="AccountUnavailable", timeout=60)

    # Each instance goes on retrying on its backoff, but the calls stop at the open circuit:
    # between here and forty more retries of the instances, only half-open probes reach the platform.
    calls_before = len(env.simulator.control.requests())
    retried = retries(env, "AccountUnavailable")
    wait_until(lambda: retries(env, "AccountUnavailable") >= retried + 40, timeout=60, what="40 more retries")
    probes = len(env.simulator.control.requests()) - calls_before
    # Without the circuit each of those 40 retries would be a call; with it, only the half-open
    # probes (one per cooldown of 15-30 s) go out, however slowly the machine runs the retries.
    assert probes <= 8, f"{probes} calls reached a failing platform through an open circuit"

    env.simulator.control.clear_faults()
    wait_until(
        lambda: ready_count(env, names) == len(names), timeout=60, what="20 instances Ready after recovery"
    )
