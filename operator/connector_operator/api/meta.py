"""The one reader of an object's metadata: what the code needs of `metadata`, typed, from any body.

kopf's `Meta` has no `generation`, and a raw body is read in many places (events, the delete
handler, an object read back after a peering pause): each read goes through `Meta.of`, so a
missing or mistyped field means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Meta:
    namespace: str = ""
    name: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    deleting: bool = False  # a deletionTimestamp is set
    finalizers: tuple[str, ...] = ()
    annotations: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Meta:
        meta = body.get("metadata")
        if not isinstance(meta, Mapping):
            return cls()
        annotations = meta.get("annotations")
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            generation=_int(meta.get("generation")),
            resource_version=str(meta.get("resourceVersion") or ""),
            deleting=meta.get("deletionTimestamp") is not None,
            finalizers=tuple(meta.get("finalizers") or ()),
            annotations=annotations if isinstance(annotations, Mapping) else {},
        )


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
