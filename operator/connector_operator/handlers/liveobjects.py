"""Which ConnectorInstances exist, and which remote instances they manage or observe: a kopf index.

Ownership itself is proven on the platform (the tags of domain/ownership.py); this index answers
what only the cluster knows: whether the object a take-over names is gone, whether an instance
an object wants to adopt is already another live object's (managed, or observed, which leaves no
mark on the instance), and which claimed or tagged instances belong to no object at all (strays).
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


class LiveObjects:
    """Questions to kopf's index of ConnectorInstances."""

    def __init__(self, index: kopf.Index[Any, Any]) -> None:
        self._index = index

    def by_uid(self, uid: str) -> tuple[str, str] | None:
        store = self._index.get(("uid", uid))
        return next(iter(store), None) if store is not None else None

    def has_uid(self, uid: str) -> bool:
        return self.by_uid(uid) is not None

    def has_object(self, namespace: str, name: str) -> bool:
        return self._index.get(("object", namespace, name)) is not None

    def users(self, instance_id: int, api_url: str, besides: str) -> list[tuple[str, str]]:
        """(namespace, name) of the live objects other than uid `besides` that manage or observe
        `instance_id` at `api_url` (or at a URL not yet known: counted, to be safe)."""
        store = self._index.get(("id", instance_id))
        found = []
        for uid, url in store if store is not None else ():
            if uid != besides and url in (None, api_url):
                where = self.by_uid(uid)
                if where is not None:
                    found.append(where)
        return sorted(found)
