"""The floor: the least work that yields N Ready objects, done by a direct script, to compare against.

It creates the same N ConnectorInstance objects (the same way the operator run does), then for
each, with `concurrency` in flight (the operator's `--max-in-flight`): one `POST /instances` to the
simulator, one token Secret create, one status merge-patch with `Ready=True`. Nothing else: no
Secret reads, no lookups, no finalizer, no events. Its time is measured exactly like the
operator's, by the same `ReadyTracker`, from the first create until the last object is Ready.
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.kube import KubeClient, secret_path
from bench.processes import ORGANIZATION_SECRET, USER_SECRET
from bench.ready import ReadyTracker
from bench.workload import SET_LABEL, Obj, apply_instances, bounded
from connector_operator.api.names import GROUP, KIND, VERSION

FLOOR_SET = "floor"


@dataclass(frozen=True)
class FloorRun:
    t0: float
    apply_seconds: float
    all_ready: bool
    seconds_to_all_ready: float | None
    curve: list[tuple[float, int]]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _one(
    kube: KubeClient, http: aiohttp.ClientSession, api_url: str, obj: Obj, created: dict[str, Any]
) -> None:
    uid = created["metadata"]["uid"]
    body = {
        "name": f"{obj.namespace}-{obj.name}",
        "element": {"key": "closeio"},
        "tags": ["bench", f"k8s-uid:{uid}", f"k8s-object:{obj.key}"],
        "configuration": {"username": obj.config_value()},
    }
    headers = {"Authorization": f"User {USER_SECRET}, Organization {ORGANIZATION_SECRET}"}
    async with http.post(f"{api_url}/instances", json=body, headers=headers) as response:
        response.raise_for_status()
        instance = await response.json()
    token_secret = f"{obj.name}-token"
    data = {"token": instance["token"], "instanceID": str(instance["id"]), "apiURL": api_url}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": token_secret,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "name": obj.name,
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    await kube.call("POST", secret_path(obj.namespace), ("POST", "secrets"), body=secret)
    generation = int(created["metadata"].get("generation") or 1)
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "floor",
        "lastTransitionTime": _now(),
        "observedGeneration": generation,
    }
    status = {
        "observedGeneration": generation,
        "instanceID": instance["id"],
        "tokenSecretName": token_secret,
        "conditions": [ready],
    }
    await kube.patch_instance_status(obj.namespace, obj.name, status)


async def run_floor(
    kube: KubeClient,
    api_url: str,
    objects: Sequence[Obj],
    *,
    concurrency: int,
    apply_concurrency: int,
    timeout: float,
) -> FloorRun:
    async with (
        ReadyTracker(kube, f"{SET_LABEL}={FLOOR_SET}", len(objects)) as tracker,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=30),
        ) as http,
    ):
        t0, created = await apply_instances(kube, objects, FLOOR_SET, apply_concurrency)
        applied_at = time.monotonic()
        pairs = list(zip(objects, created, strict=True))
        await bounded(concurrency, pairs, lambda pair: _one(kube, http, api_url, pair[0], pair[1]))
        all_ready = await tracker.wait_all(timeout)
        seconds = max(tracker.ready_at.values()) - t0 if all_ready else None
        return FloorRun(t0, applied_at - t0, all_ready, seconds, tracker.curve(t0))
