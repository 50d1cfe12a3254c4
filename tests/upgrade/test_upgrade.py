"""An upgrade from the previous release to the working tree, and the downgrade back, change nothing.

The previous release's chart and image (built from a worktree of its tag, release.py) are installed
cluster-wide on a control plane of the test's own, its pod run by podman as the kubelet would
(tests/image), against the simulator over HTTP. 200 ConnectorInstances and two accounts are
created at the previous release's API version (population.py) and become Ready.

The upgrade, as the README's "Upgrading" says: the working tree's CRDs by server-side apply (Helm
never upgrades CRDs), `helm upgrade` to the working tree's chart, the old pod stopped and the new
image's started. Then: not one platform write (POST, PUT, PATCH, DELETE in the simulator's log
since the baseline), not one write to a token Secret (resourceVersions), every object Ready and
kstatus Current at every sample (sampler.py, at least one a second) and by kstatus itself at the
end, each CRD's storedVersions trimmed to the new version by the operator and every object stored
at it (read from etcd), the old version still served.

The downgrade: the previous release's chart and image again, the newer CRDs kept (Helm never
downgrades CRDs, and the old ones could not drop the new version from storedVersions), with the
same assertions.

Why a test of its own kind: it needs the images, a control plane of its own and minutes (`slow`,
on a worker of its own; the images are cached after the first run).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from connector_operator.api.names import GROUP
from hack.controlplane.cluster import ControlPlane
from hack.image.podman import Podman
from hack.processes import Simulator
from open_connectors_simulator.control import SimulatorControl
from tests.chart.support import CHART
from tests.fixtures.simulator import TEST_ORGANIZATION_SECRET, TEST_USER_SECRET
from tests.upgrade import checks, history
from tests.upgrade.install import Install
from tests.upgrade.population import PLURALS, Creator
from tests.upgrade.release import Release
from tests.upgrade.steps import CREATED_AT, STORED_AT, Upgrade

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("upgrade")]

OPERATOR_NAMESPACE = "open-connectors-operator"


@pytest.fixture
def upgrade(
    own_control_plane: ControlPlane, own_simulator: Simulator, podman: Podman, tmp_path: Path
) -> Iterator[Upgrade]:
    api = config.new_client_from_config(config_file=str(own_control_plane.kubeconfig))
    install = Install(own_control_plane, api, podman, OPERATOR_NAMESPACE, own_simulator.api_url, tmp_path)
    with SimulatorControl(own_simulator.base_url) as control:
        try:
            yield Upgrade(own_control_plane, api, control, install)
        finally:
            install.remove_all()
            api.close()


def test_upgrade_and_downgrade_change_nothing_on_the_platform(
    upgrade: Upgrade, previous_release: Release, operator_image: str, own_simulator: Simulator
) -> None:
    started = time.monotonic()
    release = previous_release
    for plural in PLURALS.values():
        assert checks.storage_version(release.chart, plural) == CREATED_AT, "a new release: update CREATED_AT"
    assert checks.storage_version(CHART, PLURALS["ConnectorInstance"]) == STORED_AT

    account = {"userSecret": TEST_USER_SECRET, "organizationSecret": TEST_ORGANIZATION_SECRET}
    upgrade.install_previous(release)
    creator = Creator(upgrade.api, CREATED_AT, OPERATOR_NAMESPACE, account, own_simulator.api_url)
    upgrade.populate(
        creator, {"Authorization": f"User {TEST_USER_SECRET}, Organization {TEST_ORGANIZATION_SECRET}"}
    )
    count = len(upgrade.objects.objects)
    # Stored as the previous release stores them: the same check after the upgrade can fail.
    assert history.stored_versions(upgrade.control_plane) == {f"{GROUP}/{CREATED_AT}": count}
    ready = time.monotonic() - started

    up = upgrade.phase("upgrade", lambda mark: upgrade.upgrade_steps(mark, CHART, operator_image))
    # `kubectl get connectorinstances.v1alpha1.openconnectors.io` still answers, with every object.
    listed = client.CustomObjectsApi(upgrade.api).list_cluster_custom_object(
        GROUP, CREATED_AT, PLURALS["ConnectorInstance"]
    )
    if len(listed["items"]) != upgrade.objects.instances:
        up.failures.append(f"{CREATED_AT} lists {len(listed['items'])} ConnectorInstances")
    down = upgrade.phase("downgrade", lambda mark: upgrade.downgrade_steps(mark, release))

    summary = (
        f"upgrade test: {upgrade.objects}; {up}; {down}; "
        f"Ready after {ready:.0f}s, {time.monotonic() - started:.0f}s in all"
    )
    print(f"\n{summary}")
    failures = [f"{phase.name}: {failure}" for phase in (up, down) for failure in phase.failures]
    assert not failures, summary + "\n" + "\n".join(failures)
