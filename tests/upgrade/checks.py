"""What the upgrade test reads to judge a phase through the API and the platform: the simulator's
request log, the token Secrets' resourceVersions, the CRDs' storedVersions, and kstatus's verdict
on every object (the real library, hack/kstatus). What etcd holds is history.py's.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from connector_operator.api.names import GROUP
from hack.kstatus.build import ensure_built
from open_connectors_simulator.control import SimulatorControl
from tests.upgrade.population import PLURALS, Key
from tests.upgrade.sampler import key_of

WRITES = ("POST", "PUT", "PATCH", "DELETE")
CRDS = [f"{plural}.{GROUP}" for plural in PLURALS.values()]


@dataclass(frozen=True)
class PlatformCalls:
    """The simulator's request log since the last reset of its counters."""

    requests: list[dict[str, Any]]

    @classmethod
    def since_baseline(cls, control: SimulatorControl) -> PlatformCalls:
        return cls(control.requests())

    @property
    def writes(self) -> list[str]:
        return [f"{r['method']} {r['path']} -> {r['status']}" for r in self.requests if r["method"] in WRITES]

    def __str__(self) -> str:
        routes = Counter(f"{r['method']} {r['route']}" for r in self.requests)
        return f"{len(self.requests)} platform calls ({dict(routes)}), {len(self.writes)} writes"


def token_versions(core: client.CoreV1Api, secrets: list[tuple[str, str]]) -> dict[str, str | None]:
    """`namespace/name` -> resourceVersion of each token Secret (None: it does not exist)."""
    versions: dict[str, str | None] = {}
    for namespace in sorted({namespace for namespace, _ in secrets}):
        listed = core.list_namespaced_secret(namespace)
        by_name = {s.metadata.name: s.metadata.resource_version for s in listed.items}
        for name in (name for ns, name in secrets if ns == namespace):
            versions[f"{namespace}/{name}"] = by_name.get(name)
    return versions


def changed(before: dict[str, str | None], after: dict[str, str | None]) -> list[str]:
    return [
        f"{name}: {before[name]} -> {after.get(name)}" for name in before if after.get(name) != before[name]
    ]


def stored_versions(api: client.ApiClient) -> dict[str, list[str]]:
    """`status.storedVersions` of each of the operator's three CRDs."""
    extensions = client.ApiextensionsV1Api(api)
    return {
        name: list(extensions.read_custom_resource_definition(name).status.stored_versions) for name in CRDS
    }


def storage_version(chart: Path, plural: str) -> str:
    """The version the chart's CRD of `plural` stores objects at."""
    crd = yaml.safe_load((chart / "crds" / f"{GROUP}_{plural}.yaml").read_text())
    [version] = [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]
    return str(version)


def kstatus_verdicts(items: list[dict[str, Any]]) -> dict[Key, str]:
    """kstatus's status of each object (`Current`, `InProgress`, ...), from the library itself."""
    binary = ensure_built(quiet=True)
    verdicts = {}
    for obj in items:
        done = subprocess.run(
            [str(binary)], input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        verdicts[key_of(obj)] = json.loads(done.stdout)["status"]
    return verdicts
