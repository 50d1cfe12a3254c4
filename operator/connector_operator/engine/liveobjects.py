"""Which ConnectorInstances exist, and which remote instances they manage or observe: questions to
the index that handlers/liveobjects.py has kopf keep.

Ownership itself is proven on the platform (the tags of domain/ownership.py); this index answers
what only the cluster knows: whether the object a take-over names is gone, whether an instance
an object wants to adopt is already another live object's (managed, or observed, which leaves no
mark on the instance), and which claimed or tagged instances belong to no object at all (strays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# kopf's index: a key -> the store of the values indexed under it (one per object).
Index = Mapping[Any, Iterable[Any]]


class LiveObjects:
    """Questions to kopf's index of ConnectorInstances."""

    def __init__(self, index: Index) -> None:
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
