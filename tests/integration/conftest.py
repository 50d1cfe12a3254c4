"""The fixtures integration tests take: `env`, an `Env` with the operator already running, and
`other_namespace`, a second namespace of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import Env


@pytest.fixture
def env(
    request: pytest.FixtureRequest,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
    start_operator: Callable[..., OperatorProcess],
) -> Env:
    started = Env(instances, core, namespace, simulator, start_operator)
    if request.node.get_closest_marker("manual_operator") is None:
        started.operator = start_operator()
    return started


@pytest.fixture
def other_namespace(core: client.CoreV1Api) -> str:
    """A second namespace (no namespace controller runs: unique names, never purged)."""
    name = f"t-other-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name
