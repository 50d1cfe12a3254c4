"""`FairSlots`: a semaphore shared by tenants, served in turn, with a share no tenant may exceed.

A plain semaphore serves its waiters first come, first served: a namespace that queues three
hundred calls ahead of another's one makes that one wait behind all of them, and a namespace whose
calls hang holds every slot until their deadlines (tenant-findings N5). Here each waiter names its
key (a namespace; `OPERATOR` for the operator's own calls: a cluster account's check, the shared
listing), and:

- **In turn.** Waiters queue per key, and a freed slot goes to the next key in round-robin order
  that has a waiter, so a key with work waiting is served within one round of freed slots, however
  much another key has queued. Within one key, first come, first served.
- **A share.** A key holds at most `share` of the `size` slots, even alone; the rest (the
  *reserve*, at least one slot unless `size` is 1) is for the others. Fair turns alone cannot help
  when slots are held, not freed: calls to a platform that hangs hold theirs for the whole call
  deadline, and without a reserve a newcomer's turn would come only then. With the reserve, a
  second tenant finds a slot at once. (Several hostile tenants together can still hold everything;
  the count of namespaces a team may have is the platform team's to bound.)
- **The operator's own calls** (`OPERATOR`) are served in turn like a namespace's, but are not
  held to the share: they are one per account or endpoint, on the platform team's own
  configuration (a cluster account's check, the shared listing), and every tenant waits on them.
- **Bounded waits.** `hold` takes a `max_wait`: a waiter not served by then leaves the queue with
  `TimeoutError`, so nothing waits for a slot without end while holding something else.

The default share leaves a quarter of the slots (at least one) as the reserve: `share_of(size)`.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["OPERATOR", "FairSlots", "share_of"]

OPERATOR = ""  # the key of the operator's own calls; no namespace is named ""


def share_of(size: int) -> int:
    """What one key may hold of `size` slots by default: all but a quarter (at least one)."""
    return max(1, size - max(1, size // 4)) if size > 1 else 1


class FairSlots:
    def __init__(self, size: int, share: int | None = None) -> None:
        if size < 1 or (share is not None and share < 1):
            raise ValueError("a slot bound and its share must be at least 1")
        self.size = size
        self.share = min(share if share is not None else share_of(size), size)
        self._free = size
        self._held: Counter[str] = Counter()
        # Keys with waiters, in the order of their next turn; each with its waiters in arrival order.
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    def held(self, key: str) -> int:
        """Slots `key` holds now."""
        return self._held[key]

    def waiting(self, key: str) -> int:
        """Callers of `key` waiting for a slot now."""
        return len(self._queues.get(key, ()))

    @property
    def in_use(self) -> int:
        return self.size - self._free

    @asynccontextmanager
    async def hold(self, key: str, max_wait: float | None = None) -> AsyncIterator[None]:
        """One slot for `key`, for the body of the `async with`; `TimeoutError` if none is given
        within `max_wait` seconds (None: no bound)."""
        await self.acquire(key, max_wait)
        try:
            yield
        finally:
            self.release(key)

    async def acquire(self, key: str, max_wait: float | None = None) -> None:
        """`hold`'s first half, for a caller that must tell its own timeouts from this one's."""
        # Every waiter left is of a key at its share, or no slot is free (`_dispatch` ran after
        # the last change), so taking a free slot here jumps nobody's turn.
        if self._free > 0 and self._held[key] < self._cap(key):
            self._take(key)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append(waiter)
        try:
            async with asyncio.timeout(max_wait):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # served in the same instant it gave up: hand the slot on
            else:
                self._forget(key, waiter)
            raise

    def _cap(self, key: str) -> int:
        return self.size if key == OPERATOR else self.share

    def _take(self, key: str) -> None:
        self._free -= 1
        self._held[key] += 1

    def release(self, key: str) -> None:
        self._free += 1
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiting keys, one per key per round, skipping keys at their share."""
        while self._free > 0:
            key = next((k for k in self._queues if self._held[k] < self._cap(k)), None)
            if key is None:
                return
            queue = self._queues.pop(key)
            waiter = queue.popleft()
            if queue:
                self._queues[key] = queue  # to the back of the round
            if waiter.done():  # cancelled, and not yet out of the queue: nobody to serve
                continue
            self._take(key)
            waiter.set_result(None)

    def _forget(self, key: str, waiter: asyncio.Future[None]) -> None:
        queue = self._queues.get(key)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._queues[key]
