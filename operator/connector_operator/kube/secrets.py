"""Reading referenced Secrets and owning the token Secret, through `kube.api`.

Two rules shape this module. An input Secret that the operator reads gets the watch label, so
that the operator's single, server-side-filtered Secret watch sees its later changes (and
nothing else: memory and traffic do not grow with unrelated Secrets), and the in-use finalizer,
so that it outlives every object that depends on it (handlers/secretholds.py). And the token
Secret is written only when it is ours: created by us, or labelled managed-by us and owned by
this very object; anything else is a conflict the user must resolve, never an overwrite.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.names import (
    GROUP,
    IN_USE_FINALIZER,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    VERSION,
    WATCH_LABEL,
)
from connector_operator.kube.api import MERGE_PATCH, KubeAPI, KubeError

# For core types a strategic merge patch merges `metadata.finalizers` as a set: adding ours keeps
# everyone else's, and `$deleteFromPrimitiveList` removes ours alone (a JSON merge patch would
# replace the whole list, and a JSON patch would need the index). Checked on the API server.
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
INPUT_ROLE = "input"
TOKEN_ROLE = "token"


@dataclass(frozen=True)
class SecretView:
    """What the operator keeps of a Secret: decoded data, labels and the controlling owner's uid."""

    name: str
    namespace: str
    data: Mapping[str, str | None] = field(repr=False)  # None: not UTF-8 text
    labels: Mapping[str, str]
    owner_uid: str | None = None
    held: bool = False  # carries the in-use finalizer
    deleting: bool = False  # has a deletionTimestamp: held by a finalizer, still readable

    @property
    def fingerprint(self) -> str:
        """A digest of the content, for change detection; not reversible to the values."""
        canonical = json.dumps(sorted(self.data.items())).encode()
        return hashlib.sha256(canonical).hexdigest()

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> SecretView:
        meta = raw.get("metadata") or {}
        owner: Mapping[str, Any] = next(
            (o for o in meta.get("ownerReferences") or [] if o.get("kind") == KIND and o.get("controller")),
            {},
        )
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace", ""),
            data=decode(raw.get("data") or {}),
            labels=dict(meta.get("labels") or {}),
            owner_uid=owner.get("uid"),
            held=IN_USE_FINALIZER in (meta.get("finalizers") or ()),
            deleting=meta.get("deletionTimestamp") is not None,
        )


def decode(data: Mapping[str, str]) -> dict[str, str | None]:
    decoded: dict[str, str | None] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            decoded[key] = None  # binary data is no configuration value; reported as "not UTF-8 text"
    return decoded


def encode(data: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


class SecretConflict(Exception):
    """The token Secret's name is taken by a Secret this object does not own."""


@dataclass(frozen=True)
class Owner:
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


class Secrets:
    def __init__(self, api: KubeAPI) -> None:
        self._api = api

    @staticmethod
    def _path(namespace: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")

    async def read(self, namespace: str, name: str) -> SecretView | None:
        raw = await self._api.request("GET", self._path(namespace, name))
        return SecretView.from_raw(raw) if raw is not None else None

    async def label_for_watch(self, namespace: str, name: str) -> SecretView | None:
        """Hold an input Secret, in one patch: the watch label, so the operator's label-filtered
        watch delivers its changes, and the in-use finalizer, so it stays (readable, Terminating)
        when deleted while an object depends on it. None when the Secret is gone. Not for a Secret
        being deleted: the API server refuses a new finalizer then."""
        patch = {"metadata": {"labels": {WATCH_LABEL: INPUT_ROLE}, "finalizers": [IN_USE_FINALIZER]}}
        raw = await self._api.request(
            "PATCH", self._path(namespace, name), body=patch, content_type=STRATEGIC_MERGE_PATCH
        )
        return SecretView.from_raw(raw) if raw is not None else None

    async def release_input(self, namespace: str, name: str) -> None:
        """Undo `label_for_watch` in one patch: no object references the Secret any more. Other
        finalizers and labels stay; a Secret already gone or already released is no error."""
        patch = {
            "metadata": {
                "labels": {WATCH_LABEL: None},
                "$deleteFromPrimitiveList/finalizers": [IN_USE_FINALIZER],
            }
        }
        await self._api.request(
            "PATCH", self._path(namespace, name), body=patch, content_type=STRATEGIC_MERGE_PATCH
        )

    async def write_token(
        self, namespace: str, name: str, owner: Owner, data: Mapping[str, str], current: SecretView | None
    ) -> bool:
        """Create or update the token Secret; returns whether anything was written."""
        if current is not None:
            if not current.managed or current.owner_uid not in (None, owner.uid):
                raise SecretConflict(
                    f"Secret {name!r} exists and is not managed by this ConnectorInstance; "
                    "delete or rename it, or set spec.tokenSecret.name to another name"
                )
            if current.owner_uid == owner.uid and all(current.data.get(k) == v for k, v in data.items()):
                return False
            patch = {
                "metadata": {
                    "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, WATCH_LABEL: TOKEN_ROLE},
                    "ownerReferences": [owner.reference()],
                },
                "data": encode(data),  # a merge patch keeps keys we did not write
            }
            await self._api.request(
                "PATCH", self._path(namespace, name), body=patch, content_type=MERGE_PATCH
            )
            return True
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, WATCH_LABEL: TOKEN_ROLE},
                "ownerReferences": [owner.reference()],
            },
            "data": encode(data),
        }
        try:
            await self._api.request("POST", self._path(namespace), body=body)
        except KubeError as error:
            if error.status == 409:
                # It exists already (not in our cache): look at it, never overwrite blindly.
                return await self.write_token(namespace, name, owner, data, await self.read(namespace, name))
            raise
        return True

    async def delete_token(self, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the token Secret if, and only if, this object owns it."""
        current = await self.read(namespace, name)
        if current is None or not current.managed or current.owner_uid != owner_uid:
            return
        await self._api.request("DELETE", self._path(namespace, name))

    async def watch_names(
        self, namespace: str | None, timeout: float, since: str | None = None
    ) -> AsyncIterator[tuple[str, tuple[str, str] | None]]:
        """Changes of the Secrets in `namespace` (None: every namespace the operator may watch)
        after resourceVersion `since` (None: from now), for up to `timeout` seconds, as
        (resourceVersion, (namespace, name)) for a created, changed or deleted Secret, or
        (resourceVersion, None) for a bookmark. A caller resumes from the last resourceVersion.

        Metadata only (a PartialObjectMetadata watch): the values never travel, and an event
        costs a few hundred bytes. The caller waits for a few names among all the Secrets of a
        namespace, so it filters, and it keeps nothing of the others. An expired resourceVersion
        ends the watch with KubeError 410: start again from now."""
        path = self._path(namespace) if namespace is not None else "/api/v1/secrets"
        if since is None:
            listed = await self._api.request("GET", path, params={"limit": "1"}) or {}
            since = str((listed.get("metadata") or {}).get("resourceVersion", ""))
        params = {
            "watch": "true",
            "resourceVersion": since,
            "timeoutSeconds": str(max(1, int(timeout))),
            "allowWatchBookmarks": "true",
        }
        yield since, None  # the caller resumes from here even if nothing happens
        async with self._api.stream_lines(path, params, accept=METADATA_ONLY) as lines:
            async for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise KubeError(int(obj.get("code") or 0), str(obj.get("reason") or "watch error"))
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or since)
                if kind == "BOOKMARK":
                    yield version, None
                elif kind in ("ADDED", "MODIFIED", "DELETED"):
                    yield version, (str(meta.get("namespace", "")), str(meta.get("name", "")))
