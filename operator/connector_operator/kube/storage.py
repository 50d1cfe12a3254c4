"""Storage migration: objects stored at an earlier API version are written once at the storage
version, then each CRD's `status.storedVersions` is trimmed to it (issue 23).

The API server stores an object in the version that was the storage version when it was last
written, and lists in `status.storedVersions` every version objects may still be stored in; a
version can leave a CRD only once it has left that list, and only someone who knows every object
was rewritten may trim it. The rewrite is a no-op write (an empty merge patch): nothing changes but
the encoding in etcd, so no generation moves, no spec changes, and the operator's passes find
nothing to do. This is what the Kubernetes storage version migrator does.

Only an operator that sees every namespace (the cluster-wide install, which the chart grants `get`
on the three CRDs and `patch` on their status) can know that; a namespaced install cannot, and the
README's "Upgrading" section gives the platform team the two commands instead. Objects deleted
meanwhile are no error; objects created meanwhile are written at the storage version anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connector_operator.kube.api import MERGE_PATCH, KubeAPI, KubeError

logger = logging.getLogger(__name__)

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PAGE = 500
# Writes in flight at once: the API server's, not the platform's; a few keep 1,000 objects to
# seconds without crowding the passes' own writes.
CONCURRENCY = 4
FORBIDDEN = 403


@dataclass(frozen=True)
class Kind:
    group: str
    plural: str
    namespaced: bool

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


async def migrate(api: KubeAPI, kinds: Iterable[Kind], version: str) -> dict[str, int] | None:
    """Rewrite the objects of each kind whose CRD still lists another stored version, then trim
    the list: {crd: objects rewritten}. None when this identity may not read the CRDs (a namespaced
    install: the platform team migrates)."""
    done: dict[str, int] = {}
    for kind in kinds:
        try:
            crd = await api.request("GET", f"{CRDS}/{kind.crd}")
        except KubeError as error:
            if error.status == FORBIDDEN:
                return None
            raise
        stored = ((crd or {}).get("status") or {}).get("storedVersions") or []
        if crd is None or stored == [version]:
            continue
        done[kind.crd] = await _rewrite(api, kind, version)
        patch = {"status": {"storedVersions": [version]}}
        await api.request("PATCH", f"{CRDS}/{kind.crd}/status", body=patch, content_type=MERGE_PATCH)
        logger.info(
            "%s: %d objects written at %s; storedVersions was %s", kind.crd, done[kind.crd], version, stored
        )
    return done


async def _rewrite(api: KubeAPI, kind: Kind, version: str) -> int:
    """Every object of the kind, written once at `version` (page by page, a few at a time)."""
    base = f"/apis/{kind.group}/{version}"
    slots = asyncio.Semaphore(CONCURRENCY)
    count = 0

    async def write(item: dict[str, Any]) -> None:
        meta = item.get("metadata") or {}
        scope = f"/namespaces/{meta.get('namespace')}" if kind.namespaced else ""
        async with slots:
            # None (404): deleted meanwhile, nothing left to migrate.
            await api.request(
                "PATCH", f"{base}{scope}/{kind.plural}/{meta.get('name')}", body={}, content_type=MERGE_PATCH
            )

    params: dict[str, str] = {"limit": str(PAGE)}
    while True:
        page = await api.request("GET", f"{base}/{kind.plural}", params=params) or {}
        items = page.get("items") or []
        await asyncio.gather(*(write(item) for item in items))
        count += len(items)
        following = (page.get("metadata") or {}).get("continue")
        if not following:
            return count
        params = {"limit": str(PAGE), "continue": following}
