"""`Slots`: how many platform calls may be in flight, per namespace, per platform host and in total.

A single global bound lets one slow host take every slot: 32 calls to a server that answers a
byte every ten seconds blocked the calls of every other tenant. So a call takes, in this order,
one slot of its object's namespace, one of its platform host and one of the global ones:

- A host is a name (`client.host_of`: lowercased, without a trailing dot; scheme and port
  ignored), at most `per_host` calls (8). Keyed by scheme://host:port, one server on five ports,
  which an allowlist entry `host:*` allows, was five hosts and took 5 x 8 slots: all 32; and
  `api.example.` was another host than `api.example`. One name is one server's capacity.
- A namespace (the ConnectorInstance's; RBAC, the admission policies and the namespaced install
  all make the namespace the tenant's unit) holds at most `per_namespace` calls (the per-host
  bound unless set), whatever hosts its objects name: several allowed hosts (`*.example`, or several names
  of one server) do not multiply one tenant's share either.

So a tenant's objects, however slow the hosts they name, hold at most `per_namespace` of the
`total` slots (8 of 32 by default) until each call's deadline frees them, and the other
namespaces keep the rest (24). Measurable: the calls one namespace, or one host, has in flight
never exceed its bound. What remains: a tenant with several namespaces has a share in each, so
`total / per_namespace` of them (4 by default) can still fill the global bound for a deadline;
and a call without a namespace (an account's check) is bounded by its host and the total only.

The order matters: a call waits for its namespace's slot holding nothing, for its host's holding
only its namespace's, and for a global one holding only its own namespace's and host's. Were the
host taken first, a namespace queueing on its own bound would hold the host's slots, and starve
every other namespace calling that host. A semaphore exists only while calls hold or wait for it,
so a stream of distinct hosts or namespaces leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Bound:
    slots: asyncio.Semaphore
    users: int = 0  # calls holding or waiting for one of its slots


@dataclass
class _Keyed:
    """One semaphore of `size` slots per key, kept only while a call uses it."""

    size: int
    _bounds: dict[str, _Bound] = field(default_factory=dict)

    @asynccontextmanager
    async def hold(self, key: str | None) -> AsyncIterator[None]:
        if key is None:  # not bounded by this kind of key
            yield
            return
        bound = self._bounds.get(key)
        if bound is None:
            bound = self._bounds[key] = _Bound(asyncio.Semaphore(self.size))
        bound.users += 1
        try:
            async with bound.slots:
                yield
        finally:
            bound.users -= 1
            if bound.users == 0:
                del self._bounds[key]


@dataclass
class Slots:
    total: int
    per_host: int
    per_namespace: int | None = None  # None: as per_host
    _global: asyncio.Semaphore = field(init=False)
    _namespaces: _Keyed = field(init=False)
    _hosts: _Keyed = field(init=False)

    def __post_init__(self) -> None:
        if self.per_namespace is None:
            self.per_namespace = self.per_host
        if self.total < 1 or self.per_host < 1 or self.per_namespace < 1:
            raise ValueError("in-flight bounds must be at least 1")
        self.per_host = min(self.per_host, self.total)
        self.per_namespace = min(self.per_namespace, self.total)
        self._global = asyncio.Semaphore(self.total)
        self._namespaces = _Keyed(self.per_namespace)
        self._hosts = _Keyed(self.per_host)

    @asynccontextmanager
    async def hold(self, host: str, namespace: str | None = None) -> AsyncIterator[None]:
        """A slot of `namespace` (None: no namespace bound), then of `host`, then a global one."""
        async with self._namespaces.hold(namespace), self._hosts.hold(host), self._global:
            yield
