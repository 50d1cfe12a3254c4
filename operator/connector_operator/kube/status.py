"""Writing `ConnectorInstance.status` through the status subresource, as a JSON merge patch.

The operator never writes `spec`; a merge patch on the status subresource can change nothing
else, and leaves kopf's own bookkeeping (`status.kopf`) alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from connector_operator.api.names import GROUP, PLURAL, VERSION


class StatusWriter:
    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def patch(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        """Merge `status` into the object's status; False when the object is already gone."""
        try:
            await self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                {"status": dict(status)},
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True
