"""One Helm release of the chart on the upgrade test's own control plane, and its pod as a container.

`Install` does what an operator of the cluster does: `helm install` a release's chart (cluster-wide,
so that the operator may trim the CRDs' storedVersions), `helm upgrade` to another chart (Helm
never touches CRDs then), a server-side apply of a chart's crds/ (how the README's "Upgrading"
updates them), and the Deployment's one pod, run with podman from exactly what the installed
release holds (`helm get manifest`: the pod template the kubelet would start). The Deployment's
strategy is Recreate, so the old pod stops before the new one starts, as here.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from kubernetes import client

from hack.controlplane.cluster import ControlPlane, free_port
from hack.image.podman import Podman
from tests.chart.conftest import RELEASE, service_account_token
from tests.chart.support import helm
from tests.fixtures.waiting import wait_until
from tests.image.podspec import pod_run
from tests.image.support import Container

# `kubectl apply --server-side` applies as the field manager "kubectl".
FIELD_MANAGER = "kubectl"


@dataclass
class Install:
    """The release `oco` in `namespace`, its operator calling the platform at `api_url`."""

    control_plane: ControlPlane
    api: client.ApiClient
    podman: Podman
    namespace: str
    api_url: str
    scratch: Path
    # The host's ports for /healthz and /metrics: every container shares the host's network.
    ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    containers: list[Container] = field(default_factory=list)

    def values(self, image: str) -> list[str]:
        repository, _, tag = image.rpartition(":")
        hosts = sorted({"127.0.0.1:*", f"{urlparse(self.api_url).hostname}:*"})
        return [
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", f"operator.defaultApiURL={self.api_url}",
            "--set-json", f"operator.allowedAPIHosts={json.dumps(hosts)}",
            "--set", "operator.allowInsecureHTTP=true",
            "--set", f"operator.healthPort={self.ports[0]}", "--set", f"metrics.port={self.ports[1]}",
        ]  # fmt: skip

    def _helm(self, *args: str) -> None:
        done = helm(*args, "--namespace", self.namespace, kubeconfig=self.control_plane.kubeconfig)
        assert done.returncode == 0, done.stderr

    def install(self, chart: Path, image: str) -> None:
        """`helm install`: the chart's CRDs too (Helm installs crds/ only when they are absent)."""
        self._helm("install", RELEASE, str(chart), "--create-namespace", *self.values(image))

    def upgrade(self, chart: Path, image: str) -> None:
        """`helm upgrade` to `chart` with the same values: RBAC, policies, the Deployment; no CRD."""
        self._helm("upgrade", RELEASE, str(chart), *self.values(image))

    def apply_crds(self, chart: Path) -> list[str]:
        """`kubectl apply --server-side --force-conflicts -f CHART/crds/`: every CRD of the chart,
        taking over the fields `helm install` wrote (without --force-conflicts the apply is refused:
        "conflict with "helm" ...: .spec.versions"); waits until each is Established. Returns
        their names."""
        extensions = client.ApiextensionsV1Api(self.api)
        names = []
        for path in sorted((chart / "crds").glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            applied = extensions.patch_custom_resource_definition(
                body["metadata"]["name"], body, field_manager=FIELD_MANAGER, force=True,
                _content_type="application/apply-patch+yaml",
            )  # fmt: skip
            name: str = applied.metadata.name
            names.append(name)
            wait_until(functools.partial(_established, extensions, name), what=f"{path.name} established")
        return names

    def deployment(self) -> dict[str, Any]:
        """The Deployment as the installed release holds it (its current revision)."""
        done = helm(
            "get",
            "manifest",
            RELEASE,
            "--namespace",
            self.namespace,
            kubeconfig=self.control_plane.kubeconfig,
        )
        assert done.returncode == 0, done.stderr
        [deployment] = [doc for doc in yaml.safe_load_all(done.stdout) if doc and doc["kind"] == "Deployment"]
        return dict(deployment)

    def _service_account_dir(self) -> Path:
        """token, ca.crt and namespace, readable by the container's user, as the kubelet mounts them."""
        directory = self.scratch / f"serviceaccount-{uuid.uuid4().hex[:6]}"
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
        core = client.CoreV1Api(self.api)
        files = {
            "token": service_account_token(core, self.namespace),
            "ca.crt": self.control_plane.ca_file.read_text(),
            "namespace": self.namespace,
        }
        for name, text in files.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        return directory

    def start_pod(self, pod_name: str) -> Container:
        """The release's pod, started and ready (its readiness probe passes)."""
        run = pod_run(
            self.deployment(),
            pod_name=pod_name,
            namespace=self.namespace,
            service_account_dir=self._service_account_dir(),
            api_host="127.0.0.1",
            api_port=self.control_plane.api_port,
        )
        container = Container(self.podman, f"{pod_name}-{uuid.uuid4().hex[:6]}", run)
        self.containers.append(container)
        container.start().wait_ready(timeout=120)
        return container

    def stop_pod(self, container: Container) -> None:
        """SIGTERM and the pod's grace period, as the kubelet stops a pod the Deployment replaces."""
        seconds, code = container.stop()
        assert code == 0, f"{container.name} exited {code} after {seconds:.1f}s:\n{container.logs()[-4000:]}"
        container.remove()

    def remove_all(self) -> None:
        for container in self.containers:
            container.remove()


def _established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    crd = extensions.read_custom_resource_definition(name)
    conditions = {c.type: c.status for c in crd.status.conditions or []}
    return bool(conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True")
