"""podspec.py: the chart's rendered Deployment becomes exactly these podman options, and a field
the translation does not know is refused rather than dropped."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.chart.support import render
from tests.image.podspec import SERVICE_ACCOUNT_MOUNT, Unsupported, pod_run, quantity


def deployment(*args: str) -> dict[str, Any]:
    [found] = [o for o in render(*args) if o["kind"] == "Deployment"]
    return found


def translate(rendered: dict[str, Any]) -> Any:
    return pod_run(
        rendered,
        pod_name="oco-0",
        namespace="oco",
        service_account_dir=Path("/sa"),
        api_host="127.0.0.1",
        api_port=6443,
    )


def test_the_default_render_runs_with_the_charts_security_and_limits() -> None:
    run = translate(deployment())
    options = " ".join(run.options)
    for expected in (
        "--network host",
        "--user 65532:65532",
        "--group-add 65532",
        "--security-opt no-new-privileges",
        "--read-only --read-only-tmpfs=false",
        "--cap-drop=ALL",
        f"--memory {384 * 2**20}",
        "--cpu-shares 51",
        "--tmpfs /tmp:rw,nosuid,nodev,mode=1777,size=67108864",
        "--dns-option ndots:1",
        f"--volume /sa:{SERVICE_ACCOUNT_MOUNT}:ro",
        "--env KUBERNETES_SERVICE_HOST=127.0.0.1",
        "--env KUBERNETES_SERVICE_PORT=6443",
        "--env POD_ID=oco-0",
        "--env OCO_PEERING=open-connectors-operator",
    ):
        assert expected in options
    assert run.args == ["run"]
    assert run.grace_seconds == 30
    assert run.probes["readinessProbe"].url == "http://127.0.0.1:8080/healthz"
    assert run.ports == {"health": 8080, "metrics": 9090}


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("spec", "template", "spec"), {"hostPID": True}),
        (("spec", "template", "spec", "containers", 0), {"command": ["sh"]}),
        (("spec", "template", "spec", "containers", 0, "securityContext"), {"privileged": True}),
        (("spec", "template", "spec", "securityContext"), {"seccompProfile": {"type": "Unconfined"}}),
        (("spec", "template", "spec", "dnsConfig"), {"resolver": "custom"}),
    ],
)
def test_an_unknown_or_unsupported_field_is_refused(where: tuple[Any, ...], field: dict[str, Any]) -> None:
    rendered = copy.deepcopy(deployment())
    target = rendered
    for key in where:
        target = target[key]
    target.update(field)
    with pytest.raises(Unsupported):
        translate(rendered)


def test_quantities() -> None:
    assert quantity("384Mi") == 384 * 2**20
    assert quantity("50m") == 0.05
    assert quantity("1") == 1
    with pytest.raises(Unsupported):
        quantity("lots")
