"""Writing `ConnectorInstance.status` through the status subresource, as a JSON merge patch.

The operator never writes `spec`; a merge patch on the status subresource can change nothing
else, and leaves kopf's own bookkeeping (`status.kopf`) alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.kube.api import MERGE_PATCH, KubeAPI


class StatusWriter:
    def __init__(self, api: KubeAPI) -> None:
        self._api = api

    async def patch(
        self, namespace: str, name: str, status: Mapping[str, Any], *, plural: str = PLURAL
    ) -> bool:
        """Merge `status` into the object's status; False when the object is already gone.
        `namespace` "" is a cluster-scoped object (a ClusterConnectorAccount)."""
        scope = f"namespaces/{namespace}/" if namespace else ""
        path = f"/apis/{GROUP}/{VERSION}/{scope}{plural}/{name}/status"
        result = await self._api.request(
            "PATCH", path, body={"status": dict(status)}, content_type=MERGE_PATCH
        )
        return result is not None
