"""helm, built and cached from its Go module, and a renderer of the chart into objects."""

from __future__ import annotations

import functools
import shutil
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


def can_i(
    kubeconfig: Path, user: str, verb: str, resource: str, namespace: str | None, subresource: str | None
) -> bool:
    """`kubectl auth can-i <verb> <resource> --as <user>`. kubectl is not built by this project:
    where it is not on PATH, the same SubjectAccessReview it sends is sent through the API."""
    binary = shutil.which("kubectl")
    if binary is not None:
        command = [binary, "--kubeconfig", str(kubeconfig), "auth", "can-i", verb, resource, "--as", user]
        command += ["-n", namespace] if namespace else []
        command += ["--subresource", subresource] if subresource else []
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        assert done.stdout.strip() in ("yes", "no"), done.stdout + done.stderr
        return done.stdout.strip() == "yes"
    from kubernetes import client, config

    name, _, group = resource.partition(".")
    attributes = client.V1ResourceAttributes(
        verb=verb, resource=name, group=group, namespace=namespace, subresource=subresource
    )
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user, groups=["system:authenticated"], resource_attributes=attributes
        )
    )
    api = client.AuthorizationV1Api(config.new_client_from_config(str(kubeconfig)))
    return bool(api.create_subject_access_review(review).status.allowed)


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
