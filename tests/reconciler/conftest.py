"""The direct tier: `operator`, the kopf shell's handlers and the passes in this process against the
real API server and the simulator over HTTP (tests/reconciler/kopfstandin.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import kopf
import pytest
from kubernetes import client

from connector_operator.kube.api import KubeAPI
from connector_operator.reconciler.assemble import assemble
from connector_operator.reconciler.runtime import Runtime
from connector_operator.settings import Settings
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import Instances
from tests.fixtures.runtime import DIGEST_KEY, Events
from tests.fixtures.simulator import SimulatorHandle
from tests.reconciler.kopfstandin import Operator


def settings_for(namespace: str, simulator: SimulatorHandle, **overrides: object) -> Settings:
    """What `open-connectors-operator run` makes of the flags the integration tests pass
    (hack/processes.py: one namespace, the simulator on loopback over plain http)."""
    values: dict[str, object] = {
        "default_api_url": simulator.api_url,
        "allowed_api_hosts": ("127.0.0.1:*",),
        "allow_insecure_http": True,
        "namespaces": (namespace,),
        "operator_namespace": namespace,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def operator(
    control_plane: ControlPlane,
    crd: None,
    api_client: client.ApiClient,
    namespace: str,
    simulator: SimulatorHandle,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Operator]:
    login = kopf.ConnectionInfo(
        server=control_plane.server, ca_path=str(control_plane.ca_file), token=control_plane.admin_token
    )
    api = KubeAPI(lambda: login)
    marker = request.node.get_closest_marker("settings")
    first = marker.kwargs if marker else {}
    events = Events()

    def boot(**settings: object) -> Runtime:
        runtime = assemble(
            settings_for(namespace, simulator, **settings),
            api,
            digest_key=DIGEST_KEY,
            home=namespace,
            events=events,
        )
        runtime.scheduler.pause()  # the test runs every pass itself (Operator.run)
        return runtime

    op = Operator(
        boot(**first),
        events,
        Instances(api_client, namespace),
        client.CoreV1Api(api_client),
        namespace,
        simulator,
        boot,
    )
    try:
        yield op
    finally:
        await op.stop()  # the Runtime of the last (re)start
        await api.aclose()
