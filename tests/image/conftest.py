"""The image under test, built once per session, and what its containers need.

The first run on a fresh machine installs podman, runc and debootstrap (apt-get), builds the
stand-in base image and the operator's image; all of that is cached (hack/image), so later runs
build only when the Dockerfile's inputs changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from hack.image.build import ensure_context_image
from hack.image.podman import Podman
from hack.image.tools import ensure_tools
from hack.processes import Simulator, SimulatorLauncher
from tests.chart.conftest import Release, install_chart  # noqa: F401  (the fixture, for these tests)
from tests.image.support import ChartPod, examples


@pytest.fixture(scope="session")
def podman() -> Podman:
    ensure_tools()
    return Podman.default()


@pytest.fixture(scope="session")
def operator_image(podman: Podman) -> str:
    started = time.monotonic()
    tag, built = ensure_context_image(podman)
    took = time.monotonic() - started
    print(f"\nimage {tag}: " + (f"built in {built:.0f}s" if built is not None else f"cached ({took:.1f}s)"))
    return tag


@pytest.fixture(scope="session")
def example_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator that accepts the account secrets examples/account-secret.yaml carries."""
    [account] = [doc["stringData"] for doc in examples() if "userSecret" in doc.get("stringData", {})]
    with SimulatorLauncher(
        tmp_path_factory.mktemp("example-simulator") / "simulator.log",
        user_secret=account["userSecret"],
        organization_secret=account["organizationSecret"],
    ).start() as simulator:
        yield simulator


@pytest.fixture
def chart_pod(
    podman: Podman,
    operator_image: str,
    control_plane: ControlPlane,
    core: client.CoreV1Api,
    example_simulator: Simulator,
    install_chart: Callable[..., Release],  # noqa: F811
    tmp_path: Path,
) -> Iterator[ChartPod]:
    """The chart installed in fresh namespaces, ready to start pods of its Deployment."""
    pod = ChartPod(
        podman, control_plane, core, operator_image, example_simulator.api_url, install_chart, tmp_path
    )
    try:
        yield pod.installed()
    finally:
        pod.remove_all()
