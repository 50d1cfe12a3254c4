"""The copies of Secret values the operator keeps: at most `BUDGET` bytes in all, least recently
used first out, and no Secret larger than `MAX_KEPT` (engine/secretreads.py says when a copy may
serve a read). Tenants decide what goes into their Secrets; this bound decides what it costs."""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from connector_operator.domain.inputs import MAX_CONFIGURATION_BYTES
from connector_operator.engine.wakeups import Key
from connector_operator.kube.secrets import SecretView

# The values of every kept copy together: thousands of ordinary Secrets (a few hundred bytes to a
# few KiB each) fit many times over.
BUDGET = 32 * 1024 * 1024
# A Secret larger than the whole configuration of an object may be is not kept (read when needed).
MAX_KEPT = MAX_CONFIGURATION_BYTES
_ENTRY_OVERHEAD = 256  # the entry, the view and its dict, roughly


def size_of(view: SecretView) -> int:
    """The memory a copy's values take (Python strings, as allocated), plus a little per entry."""
    return _ENTRY_OVERHEAD + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in view.data.items())


@dataclass
class _Copy:
    view: SecretView
    size: int
    fetched_at: float | None  # monotonic, for our own reads (which held the Secret); None: the watch's


@dataclass
class SecretCopies:
    """Recently read Secrets with their values, bounded in bytes, least recently used out first."""

    budget: int = BUDGET
    max_kept: int = MAX_KEPT
    entries: OrderedDict[Key, _Copy] = field(default_factory=OrderedDict)
    used: int = 0

    def current(self, key: Key, resource_version: str) -> SecretView | None:
        """The copy at exactly this resourceVersion (what the watch shows now), if kept."""
        entry = self.entries.get(key)
        if entry is None or not resource_version or entry.view.resource_version != resource_version:
            return None
        self.entries.move_to_end(key)
        return entry.view

    def recent(self, key: Key, ttl: float) -> SecretView | None:
        """Our own read of the Secret, if at most `ttl` seconds old (it held the Secret)."""
        entry = self.entries.get(key)
        if entry is None or entry.fetched_at is None or time.monotonic() - entry.fetched_at >= ttl:
            return None
        self.entries.move_to_end(key)
        return entry.view

    def keep(self, view: SecretView, *, fetched: bool) -> None:
        """Remember a copy read from the API (`fetched`), making room for it."""
        key = (view.namespace, view.name)
        self.forget(key)
        size = size_of(view)
        if size > self.max_kept or size > self.budget:
            return
        while self.used + size > self.budget:
            _, oldest = self.entries.popitem(last=False)
            self.used -= oldest.size
        self.entries[key] = _Copy(view, size, time.monotonic() if fetched else None)
        self.used += size

    def offer(self, view: SecretView, *, new: bool) -> None:
        """A copy the watch delivered: it replaces the copy of that Secret, if one is kept, and
        is otherwise kept (`new`) only where there is room: the watch's copies push out no other."""
        key = (view.namespace, view.name)
        if key in self.entries or (new and self.used + size_of(view) <= self.budget):
            self.keep(view, fetched=False)

    def forget(self, key: Key) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.used -= entry.size
