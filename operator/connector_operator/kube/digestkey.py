"""The operator's digest key: 32 random bytes in an Opaque Secret of the operator's own namespace.

The digests in a ConnectorInstance's status (`appliedDigest`, `tokenDigest`) cover Secret values.
Keyed with something public, such as the object's UID, anyone who can read the object could test
guesses of those values offline. Keyed with this Secret, only who can read the operator's own
namespace could. It is read once at start-up and created on the first start; two starts racing to
create it both end up with the one that won (a 409 is followed by a read).

Losing it (the Secret deleted) is not fatal: a new key is created, every digest in status then
looks changed, and each object gets one PUT of an unchanged request to the platform, after which
all is quiet again. Never log or report the key.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from connector_operator.api.names import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from connector_operator.kube.api import KubeAPI, KubeError

KEY_FIELD = "key"
KEY_BYTES = 32


class DigestKeyError(Exception):
    """The key Secret exists but holds no usable key; names the Secret, never its data."""


async def load_or_create(api: KubeAPI, namespace: str, name: str) -> bytes:
    """The key from `namespace`/`name`, created with a fresh random key if the Secret is missing."""
    path = f"/api/v1/namespaces/{namespace}/secrets"
    found = await api.request("GET", f"{path}/{name}")
    if found is not None:
        return _key_of(found, namespace, name)
    key = secrets.token_bytes(KEY_BYTES)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "data": {KEY_FIELD: base64.b64encode(key).decode()},
    }
    try:
        await api.request("POST", path, body=body)
    except KubeError as error:
        if error.status != 409:
            raise
        # Another start created it between our read and our create: its key is the key.
        raced = await api.request("GET", f"{path}/{name}")
        if raced is None:
            raise KubeError(409, "the digest key Secret was created and deleted again") from None
        return _key_of(raced, namespace, name)
    return key


def _key_of(raw: dict[str, Any], namespace: str, name: str) -> bytes:
    encoded = (raw.get("data") or {}).get(KEY_FIELD)
    try:
        key = base64.b64decode(encoded or "", validate=True)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        # Never replaced silently: a new key would mean one PUT per object (see the docstring).
        raise DigestKeyError(
            f"Secret {namespace}/{name} has no usable digest key: its {KEY_FIELD!r} must hold at least "
            f"{KEY_BYTES} random bytes; delete the Secret to have a new one created"
        )
    return key
