"""helm, built and cached from its Go module, and a renderer of the chart into objects."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

from hack.controlplane.build import ensure_helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "open-connectors-operator"


@functools.cache
def helm_binary() -> Path:
    return ensure_helm()


def helm(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(helm_binary()), *args]
    if kubeconfig is not None:
        command += ["--kubeconfig", str(kubeconfig)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def render(*args: str, release: str = "oco", namespace: str = "oco") -> list[dict[str, Any]]:
    result = helm("template", release, str(CHART), "--namespace", namespace, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def deployment_env(*args: str, release: str = "oco", namespace: str = "oco") -> dict[str, str]:
    """The operator container's environment (plain values) as the chart renders it."""
    [deployment] = [
        o for o in render(*args, release=release, namespace=namespace) if o["kind"] == "Deployment"
    ]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}
