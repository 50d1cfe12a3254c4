"""The resync against the real API server and the simulator, on the operator's own clock.

The operator runs as a process: idle, it checks each object with a GET per resync and writes
nothing; a token rotated on the platform reaches the Secret at the next resync. Create, update
and rotation by the user are tests/reconciler/test_lifecycle.py's (the passes in-process).
"""

from __future__ import annotations

import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import Env, secret_data


@pytest.mark.manual_operator
def test_idle_operator_writes_nothing_and_resyncs_with_gets_only(env: Env) -> None:
    operator = env.start_operator("--resync-interval", "5")
    obj = env.create_ready()
    token_version = env.core.read_namespaced_secret("crm-token", env.namespace).metadata.resource_version
    env.simulator.control.reset_counters()

    # Two resync windows: each Ready object is checked with one GET, and nothing is written.
    wait_until(
        lambda: env.simulator.control.counters().get("GET /instances/{id}", 0) >= 2,
        timeout=30,
        what="two resyncs",
    )
    counters = env.simulator.control.counters()
    assert set(counters) == {"GET /instances/{id}"}, counters
    assert env.instances.get("crm")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert (
        env.core.read_namespaced_secret("crm-token", env.namespace).metadata.resource_version == token_version
    )
    assert operator is not None


@pytest.mark.manual_operator
def test_token_rotated_on_the_platform_is_picked_up_by_the_resync(env: Env) -> None:
    env.start_operator("--resync-interval", "5")
    instance_id = env.create_ready()["status"]["instanceID"]
    new_token = env.simulator.control.rotate_token(instance_id)
    wait_until(
        lambda: secret_data(env.core, env.namespace, "crm-token")["token"] == new_token,
        timeout=20,
        what="the rotated token",
    )
