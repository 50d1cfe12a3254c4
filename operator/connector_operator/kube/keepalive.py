"""This copy's keep-alive record in the peering objects, refreshed far more often than kopf does.

kopf writes a copy's record (priority, lifetime, last seen) every lifetime minus 5 to 10 seconds,
so a record is never more than 5 to 10 seconds from expiring. Another copy that reads it and
judges it a little later (an overloaded node or API server: seen in the tests, 35 s from a start to
the first peering decision) finds it expired, deletes it as a dead peer's and resumes: two copies
work at once until the next keep-alive. Refreshing the same record every `REFRESH` seconds (a
quarter of the lifetime) makes that a matter of 45 seconds of delay, not 5, and puts a deleted
record back within 15 seconds.

The record has kopf's own shape, under kopf's identity for this copy. Refreshing stops as soon as
the operator is asked to stop, and the record is withdrawn then, as kopf withdraws it: a refresh
landing after kopf's withdrawal would make the next copy wait out the lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from dataclasses import dataclass
from typing import Any

from connector_operator.kube.api import MERGE_PATCH, KubeAPI, KubeError
from connector_operator.kube.peering import collection_path

logger = logging.getLogger(__name__)

LIFETIME = 60
"""Seconds a record counts as alive after it was written: kopf's default (settings.peering)."""
REFRESH = LIFETIME / 4
WITHDRAW_TIMEOUT = 2.0


@dataclass(frozen=True)
class Peer:
    """This copy as the peering records name it: kopf's identity and priority (kube/peering.py)."""

    identity: str
    priority: int


def record(peer: Peer, now: datetime.datetime, lifetime: int = LIFETIME) -> dict[str, Any]:
    """A merge patch of the peering object: this copy's record as kopf writes it (None withdraws)."""
    value = {"priority": peer.priority, "lifetime": lifetime, "lastseen": now.isoformat()}
    return {"status": {peer.identity: value if lifetime > 0 else None}}


async def keep_alive(
    api: KubeAPI,
    name: str,
    namespaces: tuple[str, ...],
    peer: Peer,
    stopping: asyncio.Future[Any],
    refresh: float = REFRESH,
) -> None:
    """Refresh this copy's record in each peering object until `stopping` is done; then withdraw it."""
    paths = [f"{collection_path(namespace)}/{name}" for namespace in namespaces or (None,)]
    try:
        while not stopping.done():
            body = record(peer, datetime.datetime.now(datetime.UTC))
            for path in paths:
                await _patch(api, path, body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), timeout=refresh)
    finally:
        withdrawal = record(peer, datetime.datetime.now(datetime.UTC), lifetime=0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WITHDRAW_TIMEOUT):
                for path in paths:
                    await _patch(api, path, withdrawal)


async def _patch(api: KubeAPI, path: str, body: dict[str, Any]) -> None:
    try:
        await api.request("PATCH", path, body=body, content_type=MERGE_PATCH)
    except KubeError as error:
        # kopf's own keep-alive still runs: this is the margin, not the mechanism.
        logger.warning("peering keep-alive %s: HTTP %s %s", path, error.status, error.reason)
