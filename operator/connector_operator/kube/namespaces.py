"""The labels of a namespace, for a cluster account's namespaceSelector; read when needed, briefly cached.

The operator does not watch namespaces (a namespaced install may not), so it reads the one it
needs. A label change reaches its instances within the cache's lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from connector_operator.kube.api import KubeAPI, KubeError

CACHE_SECONDS = 30.0


class Namespaces:
    def __init__(self, api: KubeAPI) -> None:
        self._api = api
        self._cache: dict[str, tuple[float, Mapping[str, str] | None]] = {}

    async def labels(self, name: str) -> Mapping[str, str] | None:
        """The namespace's labels; None when it cannot be read (missing, or not permitted)."""
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            raw = await self._api.request("GET", f"/api/v1/namespaces/{name}")
        except KubeError:
            raw = None  # forbidden: the account's check says so, and the next read tries again
        labels = dict((raw or {}).get("metadata", {}).get("labels") or {}) if raw is not None else None
        self._cache[name] = (time.monotonic(), labels)
        return labels
