"""Every state every object was stored in during a phase, read back from etcd's history.

Sampling through the API sees the objects as often as the API server answers, and an API server
busy with an upgrade (or a loaded CI machine) may take more than a second to list 202 objects.
etcd keeps every revision of every key until the API server compacts it (every five minutes, up to
the revision of the previous compaction), so after a phase the test asks etcd's watch API for all
changes under the group's prefix since the revision at the phase's start, in order: each write of
each object, whatever the pace of sampling. The test's control plane is its own; its etcd answers
plain HTTP on loopback (etcd's JSON gateway: `/v3/kv/range`, `/v3/watch`). Custom resources are
stored as JSON, so each stored state reads as the object itself.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from connector_operator.api.names import GROUP
from hack.controlplane.cluster import ControlPlane
from tests.upgrade.population import Key

PREFIX = f"/registry/{GROUP}/".encode()
TIMEOUT = 30.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _range() -> dict[str, str]:
    end = PREFIX[:-1] + bytes([PREFIX[-1] + 1])  # the first key after every key with the prefix
    return {"key": _b64(PREFIX), "range_end": _b64(end)}


def etcd_url(control_plane: ControlPlane) -> str:
    """etcd's client URL, from the command line it was started with (the plane's first process)."""
    etcd = control_plane.processes[0]
    assert isinstance(etcd.args, list)
    [url] = [str(a).split("=", 1)[1] for a in etcd.args if str(a).startswith("--listen-client-urls=")]
    return url


def _kv_range(control_plane: ControlPlane, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{etcd_url(control_plane)}/v3/kv/range", json={**_range(), **extra}, timeout=TIMEOUT
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def revision(control_plane: ControlPlane) -> int:
    """etcd's current revision: every write after it has a higher one."""
    return int(_kv_range(control_plane, keys_only=True, limit=1)["header"]["revision"])


def stored_versions(control_plane: ControlPlane) -> Counter[str]:
    """How many of the group's objects etcd holds at each apiVersion (the encoded object names the
    version it was stored at; the API serves every object at whatever version is asked for)."""
    counts: Counter[str] = Counter()
    for kv in _kv_range(control_plane).get("kvs", []):
        counts[json.loads(base64.b64decode(kv["value"]))["apiVersion"]] += 1
    return counts


@dataclass(frozen=True)
class Stored:
    """One write of one object: its revision, and the object as stored (None: deleted)."""

    revision: int
    key: str
    obj: dict[str, Any] | None

    @property
    def object_key(self) -> Key | None:
        if self.obj is None:
            return None
        metadata = self.obj["metadata"]
        return Key(self.obj["kind"], metadata.get("namespace", ""), metadata["name"])


def writes_since(control_plane: ControlPlane, since: int) -> list[Stored]:
    """Every write under the group's prefix after revision `since`, in order, up to the last write
    there now (a watch from `since + 1`, read until it has delivered that revision)."""
    kvs = _kv_range(control_plane, keys_only=True).get("kvs", [])
    last = max((int(kv["mod_revision"]) for kv in kvs), default=0)
    if last <= since:
        return []
    request = {"create_request": {**_range(), "start_revision": str(since + 1)}}
    found: list[Stored] = []
    with httpx.stream("POST", f"{etcd_url(control_plane)}/v3/watch", json=request, timeout=TIMEOUT) as stream:
        for line in stream.iter_lines():
            result = json.loads(line).get("result", {})
            assert not result.get("compact_revision"), f"etcd compacted past revision {since}: {result}"
            for event in result.get("events", []):
                found.append(_stored(event))
            if found and found[-1].revision >= last:
                break
    return found


def _stored(event: dict[str, Any]) -> Stored:
    kv = event["kv"]
    deleted = event.get("type") == "DELETE"
    obj = None if deleted else json.loads(base64.b64decode(kv["value"]))
    return Stored(int(kv["mod_revision"]), base64.b64decode(kv["key"]).decode(), obj)
