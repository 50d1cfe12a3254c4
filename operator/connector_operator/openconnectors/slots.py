"""`Slots`: how many platform calls may be in flight, per platform host and in total.

A single global bound lets one slow host take every slot: 32 calls to a server that answers a
byte every ten seconds blocked the calls of every other tenant. So a call first takes one of its
host's slots (scheme://host:port) and only then one of the global ones: a host's calls queue on
their own semaphore and can occupy at most `per_host` global slots, whatever that host does.
(Several hosts misbehaving at once can still fill the global bound; the overall deadline per call
is what frees their slots.) A host's semaphore exists only while calls use it, so a stream of
distinct hosts leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Host:
    slots: asyncio.Semaphore
    users: int = 0  # calls holding or waiting for a slot of this host


@dataclass
class Slots:
    total: int
    per_host: int
    _global: asyncio.Semaphore = field(init=False)
    _hosts: dict[str, _Host] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_host < 1:
            raise ValueError("in-flight bounds must be at least 1")
        self.per_host = min(self.per_host, self.total)
        self._global = asyncio.Semaphore(self.total)

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        entry = self._hosts.get(host)
        if entry is None:
            entry = self._hosts[host] = _Host(asyncio.Semaphore(self.per_host))
        entry.users += 1
        try:
            async with entry.slots, self._global:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._hosts[host]
