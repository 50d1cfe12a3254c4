"""The Helm chart renders what it promises, for the default and a namespaced install.

helm itself is built from its Go module (pinned in hack/controlplane/build.py) and cached.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from hack import manifests
from tests.chart.support import CHART, ROOT, helm, render

DEPLOY = ROOT / "deploy" / "open-connectors-operator.yaml"


def kinds(objects: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((o["kind"], o["metadata"].get("namespace")) for o in objects)


def test_chart_crds_are_the_generated_ones() -> None:
    assert (CHART / "crds" / "openconnectors.io_connectorinstances.yaml").read_text() == (
        ROOT / "crds" / "openconnectors.io_connectorinstances.yaml"
    ).read_text(), "run `make crds` (it copies the CRD into the chart too)"


def test_helm_lint_passes() -> None:
    result = helm("lint", str(CHART), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("replicaCount=2", "replicaCount"),
        ("operator.logLevel=LOUD", "logLevel"),
        ("operator.watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("operator.mistyped=1", "mistyped"),
        ("image.digest=latest", "digest"),
    ],
)
def test_mistyped_values_are_rejected(value: str, complaint: str) -> None:
    result = helm("template", "x", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_default_render_is_cluster_wide_secure_and_deterministic() -> None:
    objects = render()
    assert render() == objects  # nothing random, nothing looked up
    assert kinds(objects) == [
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Deployment", "oco"),
        ("ServiceAccount", "oco"),
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["OCO_NAMESPACES"] == ""
    assert env["OCO_METRICS_PORT"] == "9090"
    assert container["image"].endswith(":0.1.0")


def test_namespaced_render_has_roles_only_in_the_watched_namespaces() -> None:
    objects = render("--set", "operator.watchNamespaces={sales,support}")
    assert kinds(objects) == [
        ("Deployment", "oco"),
        ("Role", "sales"),
        ("Role", "support"),
        ("RoleBinding", "sales"),
        ("RoleBinding", "support"),
        ("ServiceAccount", "oco"),
    ]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OCO_NAMESPACES"] == "sales,support"


def test_digest_wins_over_the_tag() -> None:
    digest = "sha256:" + "a" * 64
    [deployment] = [o for o in render("--set", f"image.digest={digest}") if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f"@{digest}")


def test_optional_objects_render_when_enabled() -> None:
    objects = render(
        "--set", "metrics.service.enabled=true",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.renderMode=always",
        "--set", "podDisruptionBudget.enabled=true",
        "--set", "networkPolicy.enabled=true",
        "--set", "networkPolicy.apiServer[0].cidr=10.0.0.1/32",
        "--set", "networkPolicy.apiServer[0].ports={6443}",
    )  # fmt: skip
    found = {o["kind"] for o in objects}
    assert {"Service", "ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"} <= found
    [policy] = [o for o in objects if o["kind"] == "NetworkPolicy"]
    cidrs = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert cidrs == ["10.0.0.1/32", "0.0.0.0/0"]


def test_service_monitor_is_skipped_without_its_crd() -> None:
    objects = render("--set", "metrics.service.enabled=true", "--set", "metrics.serviceMonitor.enabled=true")
    assert "ServiceMonitor" not in {o["kind"] for o in objects}
    assert "Service" in {o["kind"] for o in objects}


def test_no_hook_can_delete_anything_on_uninstall() -> None:
    for template in (CHART / "templates").glob("*.yaml"):
        assert "helm.sh/hook" not in template.read_text(), template.name


def _leaf_paths(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for key, sub in schema.get("properties", {}).items():
        path = (*prefix, key)
        paths |= _leaf_paths(sub, path) if "properties" in sub else {path}
    return paths


def test_every_value_is_documented_and_valid_against_the_schema() -> None:
    import jsonschema

    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)
    leaves = _leaf_paths(schema)
    stack: list[tuple[int, str]] = []
    documented: set[tuple[str, ...]] = set()
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, key))
        path = tuple(k for _, k in stack)
        if path in leaves and number and lines[number - 1].strip().startswith("#"):
            documented.add(path)
    assert leaves - documented == set(), "values without a comment right above them"


def test_plain_manifests_are_up_to_date() -> None:
    assert manifests.render() == DEPLOY.read_text(), "run `make manifests` and commit deploy/"
