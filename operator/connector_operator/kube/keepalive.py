"""This copy's keep-alive record in the peering object, refreshed far more often than kopf does.

kopf writes a copy's record (priority, lifetime, last seen) every lifetime minus 5 to 10 seconds,
so a record is never more than 5 to 10 seconds from expiring. Another copy that reads it and
judges it a little later (an overloaded node or API server: seen in the tests, 35 s from a start to
the first peering decision) finds it expired, deletes it as a dead peer's and resumes: two copies
work at once until the next keep-alive. Refreshing the same record every `REFRESH` seconds (a
quarter of the lifetime) makes that a matter of 45 seconds of delay, not 5, and puts a deleted
record back within 15 seconds.

Each refresh also reads the other copies' records, as kopf does, and tells `judged` whether this
copy is outranked (an alive record of equal or higher priority: kopf pauses then). kopf pauses its
watches itself; the passes (engine/scheduler.py) are ours and pause on that judgement. The record
and the judgement are in the one cluster-scoped peering object, never in a tenant's namespace
(kube/peering.py): a record there, whatever its priority, pauses nothing.

The record has kopf's own shape, under kopf's identity for this copy. Refreshing stops as soon as
the operator is asked to stop, and the record is withdrawn then, as kopf withdraws it: a refresh
landing after kopf's withdrawal would make the next copy wait out the lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from connector_operator.kube.api import MERGE_PATCH, KubeAPI, KubeError
from connector_operator.kube.peering import object_path

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


class Rounds(TypedDict, total=False):
    """How `keep_alive` runs its rounds, by keyword: both optional."""

    refresh: float
    """Seconds between rounds; `REFRESH` unless given."""
    judged: Callable[[bool], None] | None
    """Told after each round whether this copy is outranked; nobody unless given."""


async def keep_alive(
    api: KubeAPI,
    name: str,
    peer: Peer,
    stopping: asyncio.Future[Any],
    **rounds: Unpack[Rounds],
) -> None:
    """Refresh this copy's record in the peering object until `stopping` is done; then withdraw it.
    After each round, `judged(outranked)` if the peering object could be read."""
    path = object_path(name)
    refresh, judged = rounds.get("refresh", REFRESH), rounds.get("judged")
    try:
        while not stopping.done():
            now = datetime.datetime.now(datetime.UTC)
            answer = await _patch(api, path, record(peer, now))
            if judged is not None and answer is not None:
                judged(outranked(peer, answer, now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(stopping), timeout=refresh)
    finally:
        withdrawal = record(peer, datetime.datetime.now(datetime.UTC), lifetime=0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WITHDRAW_TIMEOUT):
                await _patch(api, path, withdrawal)


def outranked(peer: Peer, peering: Mapping[str, Any], now: datetime.datetime) -> bool:
    """Whether a peering object holds another alive record of equal or higher priority (kopf's rule)."""
    records = peering.get("status")
    if not isinstance(records, dict):
        return False
    for identity, value in records.items():
        if identity == peer.identity or not isinstance(value, dict):
            continue
        try:
            priority = int(value.get("priority", 0))
            lifetime = float(value.get("lifetime", LIFETIME))
            seen = datetime.datetime.fromisoformat(str(value["lastseen"]))
        except (KeyError, TypeError, ValueError):
            continue  # a record kopf would not read either
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=datetime.UTC)
        if priority >= peer.priority and seen + datetime.timedelta(seconds=lifetime) > now:
            return True
    return False


async def _patch(api: KubeAPI, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return await api.request("PATCH", path, body=body, content_type=MERGE_PATCH)
    except KubeError as error:
        # kopf's own keep-alive still runs: this is the margin, not the mechanism.
        logger.warning("peering keep-alive %s: HTTP %s %s", path, error.status, error.reason)
        return None
