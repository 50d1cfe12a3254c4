"""Who made which API-server request: server counters minus the driver's own, split from background.

`apiserver_request_total` is read from the API server's `/metrics` before and after a phase. The
delta holds three kinds of traffic: the benchmark driver's (counted by `KubeClient` and subtracted
here), the control plane's own housekeeping (the API server renewing its lease and reconciling
the `kubernetes` Service: resources the operator never touches, reported as `background`), and
the rest, which is the operator's. Non-resource requests (`/metrics`, `/readyz`) are background.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.kube import Key, KubeClient

METRIC = "apiserver_request_total{"
_LABEL = re.compile(r'(\w+)="([^"]*)"')

# What the control plane does on its own, measured on an idle plane (lease renewal every 10 s,
# the `kubernetes` Service and its endpoints, APF configuration): never the operator's traffic.
BACKGROUND_RESOURCES = frozenset(
    {
        "leases",
        "endpoints",
        "endpointslices",
        "services",
        "ipaddresses",
        "servicecidrs",
        "flowschemas",
        "prioritylevelconfigurations",
        "apiservices",
    }
)
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})


def parse_request_totals(text: str) -> Counter[Key]:
    """Sum `apiserver_request_total` over code, scope, group and version, by (verb, resource)."""
    totals: Counter[Key] = Counter()
    for line in text.splitlines():
        if not line.startswith(METRIC):
            continue
        labels_part, _, value = line.rpartition(" ")
        labels = dict(_LABEL.findall(labels_part))
        resource = labels.get("resource", "")
        subresource = labels.get("subresource", "")
        if not resource:
            key: Key = (labels.get("verb", ""), f"<non-resource {subresource}>")
        else:
            key = (labels.get("verb", ""), f"{resource}/{subresource}" if subresource else resource)
        totals[key] += int(float(value))
    return totals


def is_background(key: Key) -> bool:
    resource = key[1]
    return resource.startswith("<non-resource") or resource.split("/")[0] in BACKGROUND_RESOURCES


@dataclass(frozen=True)
class Snapshot:
    at: float
    server: Counter[Key]
    driver: Counter[Key]


@dataclass(frozen=True)
class Attribution:
    """Requests in a time span: the operator's (server minus driver minus background), and the rest."""

    seconds: float
    operator: dict[Key, int]
    driver: dict[Key, int]
    background: dict[Key, int] = field(default_factory=dict)

    def operator_writes(self) -> int:
        return sum(count for (verb, _), count in self.operator.items() if verb in WRITE_VERBS)

    def operator_total(self, *, include_watch: bool = True) -> int:
        return sum(c for (verb, _), c in self.operator.items() if include_watch or verb != "WATCH")

    def to_json(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 3),
            "operator": keyed(self.operator),
            "operator_writes": self.operator_writes(),
            "driver_subtracted": keyed(self.driver),
            "background": keyed(self.background),
        }


def keyed(counts: Mapping[Key, float]) -> dict[str, float]:
    """`{("PATCH", "secrets"): 3}` -> `{"PATCH secrets": 3}`, sorted, zeros left out."""
    return {f"{verb} {resource}": value for (verb, resource), value in sorted(counts.items()) if value}


async def snapshot(kube: KubeClient) -> Snapshot:
    text = await kube.metrics_text()
    return Snapshot(time.monotonic(), parse_request_totals(text), Counter(kube.sent))


def attribute(before: Snapshot, after: Snapshot) -> Attribution:
    server = after.server.copy()
    server.subtract(before.server)
    driver = after.driver.copy()
    driver.subtract(before.driver)
    operator: dict[Key, int] = {}
    background: dict[Key, int] = {}
    for key, count in server.items():
        if count <= 0:
            continue
        if is_background(key):
            background[key] = count
            continue
        # Never below zero: a driver WATCH may end a moment before the server books it.
        remaining = count - max(0, driver.get(key, 0))
        if remaining > 0:
            operator[key] = remaining
    return Attribution(after.at - before.at, operator, {k: v for k, v in driver.items() if v > 0}, background)
