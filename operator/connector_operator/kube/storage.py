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
# Lists carry names only: a page of 500 tenant-written objects can be hundreds of MiB in full.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class Kind:
    group: str
    plural: str
    namespaced: bool

    @property
    def crd(self) -> str:
        return f"{self.plural}.{self.group}"


class NotServed(Exception):
    """The CRD does not store `version` yet (its new definition is not applied): nothing may be
    trimmed, or objects still stored in the old version would be forgotten."""


async def migrate(api: KubeAPI, kinds: Iterable[Kind], version: str) -> dict[str, int] | None:
    """Rewrite the objects of each kind whose CRD still lists another stored version, then trim
    the list: {crd: objects rewritten}. None when this identity may not read the CRDs (a namespaced
    install: the platform team migrates). Raises NotServed for a CRD that does not store `version`,
    KubeError for a failure; an object that could not be written leaves its CRD untrimmed."""
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
        storage = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")]
        if storage != [version]:
            raise NotServed(
                f"{kind.crd} stores {storage}, not {version}: apply the new CRDs (README: Upgrading)"
            )
        done[kind.crd] = await _rewrite(api, kind, version)
        # Only the list that was read is replaced (a `test` of it): one changed meanwhile is not ours.
        trim = [
            {"op": "test", "path": "/status/storedVersions", "value": stored},
            {"op": "replace", "path": "/status/storedVersions", "value": [version]},
        ]
        await api.request("PATCH", f"{CRDS}/{kind.crd}/status", body=trim, content_type=JSON_PATCH)
        logger.info(
            "%s: %d objects written at %s; storedVersions was %s", kind.crd, done[kind.crd], version, stored
        )
    return done


async def _rewrite(api: KubeAPI, kind: Kind, version: str) -> int:
    """Every object of the kind, written once at `version` (page by page, a few at a time). An
    object that cannot be written (refused, say) is named and ends the migration before the trim."""
    base = f"/apis/{kind.group}/{version}"
    slots = asyncio.Semaphore(CONCURRENCY)
    count = 0
    failed: list[str] = []

    async def write(item: dict[str, Any]) -> None:
        meta = item.get("metadata") or {}
        scope = f"/namespaces/{meta.get('namespace')}" if kind.namespaced else ""
        path = f"{base}{scope}/{kind.plural}/{meta.get('name')}"
        async with slots:
            try:
                # None (404): deleted meanwhile, nothing left to migrate.
                await api.request("PATCH", path, body={}, content_type=MERGE_PATCH)
            except KubeError as error:
                failed.append(f"{meta.get('namespace') or ''}/{meta.get('name')} (HTTP {error.status})")

    params: dict[str, str] = {"limit": str(PAGE)}
    while True:
        page = await api.request("GET", f"{base}/{kind.plural}", params=params, accept=METADATA_LIST)
        if page is None:  # 404: the version is not served (yet): nothing may be trimmed
            raise KubeError(404, f"{base}/{kind.plural} not served")
        items = page.get("items") or []
        await asyncio.gather(*(write(item) for item in items))
        count += len(items)
        following = (page.get("metadata") or {}).get("continue")
        if failed:
            raise KubeError(0, f"{kind.crd}: not written: {', '.join(failed[:10])}")
        if not following:
            return count
        params = {"limit": str(PAGE), "continue": following}
