"""The kopf index of ConnectorInstances: which exist, and which remote instances they manage or
observe (the questions to it are engine/liveobjects.py's `LiveObjects`).

kopf fills its indexes from the initial listing before any handler runs, so a fresh process
never answers "gone" for an object it simply has not seen yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from connector_operator.api.names import GROUP, PLURAL, VERSION

# ("uid", uid) -> (namespace, name); ("object", namespace, name) -> uid;
# ("id", instance id) -> (uid, the platform URL it is at, if known)
Refs = dict[Any, Any]


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def instance_refs(namespace: str, name: str, uid: str, body: kopf.Body, **_: Any) -> Refs:
    refs: Refs = {("uid", uid): (namespace, name), ("object", namespace, name): uid}
    spec, status = body.get("spec"), body.get("status")
    spec = spec if isinstance(spec, Mapping) else {}
    status = status if isinstance(status, Mapping) else {}
    api_url = status.get("apiURL") if isinstance(status.get("apiURL"), str) else None
    managed = status.get("instanceID")
    if _is_id(managed):
        refs[("id", managed)] = (uid, api_url)
    observed = spec.get("instanceID")
    if spec.get("managementPolicy") == "ObserveOnly" and _is_id(observed):
        refs[("id", observed)] = (uid, api_url)  # observing leaves no tag: only this says so
    return refs


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
