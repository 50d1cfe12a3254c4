"""`make manifests`: the chart's default install as plain YAML for `kubectl apply` users.

The chart stays the single source; `deploy/` is its rendering, committed, and a test fails
when the two drift apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hack.controlplane.build import ensure_helm

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "open-connectors-operator"
HEADER = f"""\
# Rendered from charts/open-connectors-operator by `make manifests`. Do not edit.
# Install: kubectl apply --server-side -f deploy/open-connectors-operator.yaml
# The chart's defaults: cluster-wide, with its five admission policies (Kubernetes 1.30+). The
# recommended install watches named namespaces only: the chart with operator.watchNamespaces.
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
"""


def render() -> str:
    chart = ROOT / "charts" / "open-connectors-operator"
    result = subprocess.run(
        [
            str(ensure_helm(quiet=True)),
            "template",
            NAMESPACE,
            str(chart),
            "--namespace",
            NAMESPACE,
            "--include-crds",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return HEADER + result.stdout


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "deploy" / "open-connectors-operator.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
