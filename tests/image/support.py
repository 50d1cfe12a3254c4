"""Containers of the operator's image, run the way the chart's pod would run them (podspec.py).

`ChartPod` installs the chart on the real API server (RBAC, ServiceAccount, CRDs, policies), renders
it with the same values, writes the ServiceAccount's files as the kubelet mounts them (a real token
from the TokenRequest API, the cluster's CA, the namespace) and starts `Container`s from the
rendered Deployment. `Container` wraps one podman container: logs, exec, the kubelet's probes,
and a timed stop.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from kubernetes import client

from hack.controlplane.cluster import ControlPlane, free_port
from hack.image.podman import Podman
from tests.chart.conftest import Release, service_account_token
from tests.chart.support import render
from tests.fixtures.operator import wait_until
from tests.image.podspec import PodRun, Probe, pod_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def examples() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.yaml"))]


def example_of_kind(kind: str) -> dict[str, Any]:
    [found] = [doc for doc in examples() if doc["kind"] == kind]
    return found


def http_status(url: str, timeout: float) -> int | None:
    """The status of a GET, or None when nothing answered in time."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except OSError:
        return None


def probe_passes(probe: Probe) -> bool:
    """One probe as the kubelet makes it: an HTTP GET within the timeout, 200-399 passes."""
    status = http_status(probe.url, probe.timeout)
    return status is not None and 200 <= status < 400


@dataclass
class Container:
    podman: Podman
    name: str
    run: PodRun
    started_at: float = 0.0  # time.monotonic() just before `podman run`

    def start(self) -> Container:
        self.started_at = time.monotonic()
        self.podman.run(*self.run.command(self.name))
        return self

    def state(self) -> dict[str, Any]:
        done = self.podman.run("inspect", "--format", "{{json .State}}", self.name)
        state: dict[str, Any] = json.loads(done.stdout)
        return state

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def logs(self) -> str:
        done = self.podman.run("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.podman.run("exec", self.name, *command, check=False, timeout=60)

    def url(self, port_name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.run.ports[port_name]}{path}"

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from the start until the readiness probe passes (polled faster than the kubelet's
        period, to measure; the probe itself is the kubelet's)."""
        probe = self.run.probes["readinessProbe"]

        def ready() -> bool:
            if not self.running():
                raise AssertionError(f"container {self.name} exited:\n{self.logs()[-4000:]}")
            return probe_passes(probe)

        wait_until(ready, timeout=timeout, what=f"{self.name}: readiness probe")
        return time.monotonic() - self.started_at

    def stop(self) -> tuple[float, int]:
        """SIGTERM, and SIGKILL after the pod's grace period, as the kubelet does: (seconds, exit code)."""
        started = time.monotonic()
        self.podman.run(
            "stop", "--time", str(self.run.grace_seconds), self.name, timeout=self.run.grace_seconds + 60
        )
        seconds = time.monotonic() - started
        return seconds, int(self.state()["ExitCode"])

    def remove(self) -> None:
        self.podman.run("rm", "--force", "--time", "0", self.name, check=False)


@dataclass
class ChartPod:
    """The chart installed for one test, and pods of its Deployment started as containers."""

    podman: Podman
    control_plane: ControlPlane
    core: client.CoreV1Api
    image: str
    api_url: str  # the platform the chart's operator.defaultApiURL names
    install: Callable[..., Release]
    tmp_path: Path
    release: Release | None = None
    values: list[str] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)

    @property
    def watched(self) -> str:
        assert self.release is not None
        return self.release.watched[0]

    def values_for(self, api_url: str, health_port: int, metrics_port: int) -> list[str]:
        repository, _, tag = self.image.rpartition(":")
        hosts = sorted({"127.0.0.1:*", f"{urlparse(api_url).hostname}:*"})
        return [
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", f"operator.defaultApiURL={api_url}",
            "--set-json", f"operator.allowedAPIHosts={json.dumps(hosts)}",
            "--set", "operator.allowInsecureHTTP=true",
            "--set", f"operator.healthPort={health_port}", "--set", f"metrics.port={metrics_port}",
        ]  # fmt: skip

    def installed(self) -> ChartPod:
        # The installed release's own values; each pod renders its ports (and maybe platform) anew.
        self.values = self.values_for(self.api_url, free_port(), free_port())
        self.release = self.install(*self.values)
        return self

    def deployment(self, api_url: str | None = None) -> dict[str, Any]:
        """The Deployment as `helm template` renders it for this release, on free ports (every
        container shares the host's network)."""
        assert self.release is not None
        values = self.values_for(api_url or self.api_url, free_port(), free_port())
        rendered = render(
            *values,
            "--set", f"admissionPolicies.enabled={str(self.release.policies).lower()}",
            "--set", f"operator.watchNamespaces={{{self.watched}}}",
            namespace=self.release.namespace,
        )  # fmt: skip
        [deployment] = [o for o in rendered if o["kind"] == "Deployment"]
        return deployment

    def service_account_dir(self) -> Path:
        """token, ca.crt and namespace, readable by the container's user, as the kubelet mounts them."""
        assert self.release is not None
        directory = self.tmp_path / f"serviceaccount-{uuid.uuid4().hex[:6]}"
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
        files = {
            "token": service_account_token(self.core, self.release.namespace),
            "ca.crt": self.control_plane.ca_file.read_text(),
            "namespace": self.release.namespace,
        }
        for name, text in files.items():
            (directory / name).write_text(text)
            (directory / name).chmod(0o644)
        return directory

    def start(self, pod_name: str, api_url: str | None = None) -> Container:
        assert self.release is not None
        run = pod_run(
            self.deployment(api_url),
            pod_name=pod_name,
            namespace=self.release.namespace,
            service_account_dir=self.service_account_dir(),
            api_host="127.0.0.1",
            api_port=self.control_plane.api_port,
        )
        container = Container(self.podman, f"{pod_name}-{uuid.uuid4().hex[:6]}", run)
        self.containers.append(container)
        return container.start()

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(Exception):
                container.remove()
