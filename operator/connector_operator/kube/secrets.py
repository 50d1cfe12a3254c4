"""Reading referenced Secrets and owning the token Secret, over the async Kubernetes client.

Two rules shape this module. An input Secret that the operator reads gets the watch label, so
that the operator's single, server-side-filtered Secret watch sees its later changes (and
nothing else: memory and traffic do not grow with unrelated Secrets). And the token Secret is
written only when it is ours: created by us, or labelled managed-by us and owned by this very
object; anything else is a conflict the user must resolve, never an overwrite.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from connector_operator.api.names import (
    GROUP,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    VERSION,
    WATCH_LABEL,
)

INPUT_ROLE = "input"
TOKEN_ROLE = "token"


@dataclass(frozen=True)
class SecretView:
    """What the operator keeps of a Secret: decoded data, labels and the controlling owner's uid."""

    name: str
    namespace: str
    data: Mapping[str, str] = field(repr=False)
    labels: Mapping[str, str]
    owner_uid: str | None = None
    owner_name: str | None = None

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
            owner_name=owner.get("name"),
        )


def decode(data: Mapping[str, str]) -> dict[str, str]:
    decoded = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            decoded[key] = ""  # binary data is no valid configuration value; reported as empty
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
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    async def read(self, namespace: str, name: str) -> SecretView | None:
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return SecretView.from_raw(self._core.api_client.sanitize_for_serialization(secret))

    async def label_for_watch(self, namespace: str, name: str) -> None:
        """Mark an input Secret so the operator's label-filtered watch delivers its changes."""
        patch = {"metadata": {"labels": {WATCH_LABEL: INPUT_ROLE}}}
        try:
            await self._core.patch_namespaced_secret(name, namespace, patch)
        except ApiException as error:
            if error.status != 404:
                raise

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
            await self._core.patch_namespaced_secret(name, namespace, patch)
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
            await self._core.create_namespaced_secret(namespace, body)
        except ApiException as error:
            if error.status == 409:
                # Someone created it between our read and our write: look again, never overwrite blindly.
                return await self.write_token(namespace, name, owner, data, await self.read(namespace, name))
            raise
        return True

    async def delete_token(self, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the token Secret if, and only if, this object owns it."""
        current = await self.read(namespace, name)
        if current is None or not current.managed or current.owner_uid != owner_uid:
            return
        try:
            await self._core.delete_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    async def wait_for_change(self, namespace: str, name: str, timeout: float) -> None:
        """Return when the named Secret is created, changed or deleted, or after `timeout` seconds.

        For Secrets the label-filtered watch cannot see: one that does not exist yet, or one in the
        way that is not ours to label. The watch is filtered by name on the server, so waiting
        for one Secret never lists or receives any other Secret of the namespace.
        """
        selector = f"metadata.name={name}"
        existing = await self._core.list_namespaced_secret(namespace, field_selector=selector)
        # kubernetes.aio has no Watch helper: read the watch stream's JSON lines ourselves.
        response = await self._core.list_namespaced_secret(
            namespace,
            field_selector=selector,
            resource_version=existing.metadata.resource_version,
            watch=True,
            timeout_seconds=max(1, int(timeout)),
            _preload_content=False,
        )
        try:
            async for line in response.content:
                if line.strip() and json.loads(line).get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    return
        finally:
            response.release()
