"""`Slots`: how many platform calls may be in flight per platform host and in total, shared fairly
by namespaces (`fair.FairSlots`).

A single global bound lets one slow host take every slot: 32 calls to a server that answers a
byte every ten seconds blocked the calls of every other tenant. So a call takes one slot of its
platform host, then one of the global ones:

- A host is a name (`client.host_of`: lowercased, without a trailing dot; scheme and port
  ignored), at most `per_host` calls (8). Keyed by scheme://host:port, one server on five ports,
  which an allowlist entry `host:*` allows, was five hosts and took 5 x 8 slots: all 32; and
  `api.example.` was another host than `api.example`. One name is one server's capacity.
- At both, the call waits in its namespace's queue (the ConnectorInstance's; RBAC, the admission
  policies and the namespaced install all make the namespace the tenant's unit; `fair.OPERATOR`
  for the operator's own calls). Namespaces with waiting calls are served in turn, and one
  namespace holds at most `per_namespace` of a host's slots and of the total (default: the host's
  bound less a quarter, 6 of 8), whatever hosts it names.

In a real install every tenant calls the same SAP host, so a per-namespace semaphore next to a
host semaphore of the same size (what this was) let one namespace hold the only host: its slow
calls held all 8 slots, and everyone else queued first come, first served behind its queue
(tenant-findings N5). Now the others find the host's reserve (2 of 8) free, and get their turn in
the queue within one round. What remains: a tenant with several namespaces has a share in each.

A wait for a slot is bounded (`max_wait`, the call's deadline): a call that gets none in time
raises `errors.NoSlot` and holds nothing. A host's `FairSlots` exists only while calls hold or wait
for it, so a stream of distinct hosts leaves nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.fair import OPERATOR, FairSlots, share_of


@dataclass
class _Host:
    slots: FairSlots
    users: int = 0  # calls holding or waiting for one of its slots


@dataclass
class Slots:
    total: int
    per_host: int
    per_namespace: int | None = None  # None: `share_of(per_host)`
    _global: FairSlots = field(init=False)
    _hosts: dict[str, _Host] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_host < 1 or (self.per_namespace is not None and self.per_namespace < 1):
            raise ValueError("in-flight bounds must be at least 1")
        self.per_host = min(self.per_host, self.total)
        if self.per_namespace is None:
            self.per_namespace = share_of(self.per_host)
        self.per_namespace = min(self.per_namespace, self.total)
        self._global = FairSlots(self.total, self.per_namespace)

    def host(self, host: str) -> FairSlots | None:
        """The host's slots while any call uses them (None otherwise): what the tests look at."""
        entry = self._hosts.get(host)
        return entry.slots if entry is not None else None

    @asynccontextmanager
    async def hold(
        self, host: str, namespace: str | None = None, max_wait: float | None = None
    ) -> AsyncIterator[None]:
        """A slot of `host`, then a global one, in `namespace`'s turn (None: the operator's own
        call); `errors.NoSlot` when they are not both given within `max_wait` seconds."""
        key = OPERATOR if namespace is None else namespace
        entry = self._hosts.get(host)
        if entry is None:
            assert self.per_namespace is not None
            entry = self._hosts[host] = _Host(FairSlots(self.per_host, self.per_namespace))
        entry.users += 1
        try:
            await self._acquire(entry.slots, host, key, max_wait)
            try:
                yield
            finally:
                entry.slots.release(key)
                self._global.release(key)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._hosts[host]

    async def _acquire(self, host_slots: FairSlots, host: str, key: str, max_wait: float | None) -> None:
        """Both slots, or neither and `NoSlot`."""
        deadline = None if max_wait is None else time.monotonic() + max_wait
        try:
            await host_slots.acquire(key, max_wait)
            try:
                await self._global.acquire(key, _left(deadline))
            except BaseException:
                host_slots.release(key)
                raise
        except TimeoutError:
            raise errors.NoSlot(
                f"no call slot for {host} within {max_wait:g}s: other calls to it are slow; "
                "no request was sent",
                retry_after=0.0,
            ) from None


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
