"""What the upgrade test runs on: a control plane and a simulator of its own, the previous release
checked out with its image, and the working tree's image (the image tests' fixtures).

The control plane is the test's own because the install is cluster-wide (only then may the operator
trim the CRDs' storedVersions), and a cluster-wide operator on the worker's shared control plane
would serve what earlier tests left there; the previous release's CRDs must also replace the
working tree's there. The simulator is its own so that its request log holds this test's calls only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.controlplane import cluster
from hack.image.podman import Podman
from hack.processes import Simulator
from tests.fixtures.simulator import start_simulator
from tests.image.conftest import operator_image, podman  # noqa: F401  (the fixtures, for this test)
from tests.upgrade.release import Release, ensure_release_image, worktree


@pytest.fixture
def own_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ControlPlane]:
    with cluster.running(tmp_path_factory.mktemp("upgrade-controlplane")) as plane:
        yield plane


@pytest.fixture
def own_simulator(tmp_path: Path) -> Iterator[Simulator]:
    with start_simulator(tmp_path / "simulator.log") as simulator:
        yield simulator


@pytest.fixture
def previous_release(podman: Podman) -> Iterator[Release]:  # noqa: F811
    """The previous release's worktree (removed afterwards) and its image, built unless cached."""
    started = time.monotonic()
    with worktree() as release:
        built = ensure_release_image(podman, release)
        took = time.monotonic() - started
        print(
            f"\nprevious release {release.version} ({release.commit[:12]}): image {release.image} "
            + (f"built in {built:.0f}s" if built is not None else f"cached ({took:.1f}s)")
        )
        yield release
