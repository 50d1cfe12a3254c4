"""Spending an OAuth grant: the code (or a denied consent's error) goes from the authorization
Secret once the operator used or refused it.

Only the very values the pass read are removed, in one JSON patch whose `test` operations make it
fail when the Secret changed meanwhile: a person who ran `kubectl openconnectors authorize` again
while the pass worked keeps the new code. Other keys of the Secret are left alone.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from connector_operator.kube.api import KubeAPI, KubeError

JSON_PATCH = "application/json-patch+json"
# What the API server answers when a `test` operation fails (or a path to remove is gone).
_CHANGED = 422


async def discard(api: KubeAPI, namespace: str, name: str, read: Mapping[str, str]) -> bool:
    """Remove the keys of `read` (decoded values, as read) from the Secret if they still hold
    those values; False when the Secret is gone or changed meanwhile."""
    if not read:
        return True
    operations: list[dict[str, str]] = []
    for key, value in sorted(read.items()):
        path = "/data/" + key.replace("~", "~0").replace("/", "~1")
        encoded = base64.b64encode(value.encode()).decode()
        operations += [{"op": "test", "path": path, "value": encoded}, {"op": "remove", "path": path}]
    try:
        raw = await api.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/secrets/{name}",
            body=operations,
            content_type=JSON_PATCH,
        )
    except KubeError as error:
        if error.status == _CHANGED:
            return False
        raise
    return raw is not None
