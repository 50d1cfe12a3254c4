"""Reading a referenced Secret: its values come from a small, bounded cache of copies, or from the API.

The Secret watch keeps metadata and a fingerprint only (handlers/secrets.py): what tenants put into
Secrets, and they can label any Secret of theirs for the watch, must not decide how much memory
the operator needs. The values live here, in `SecretCopies`: at most `BUDGET` bytes in all,
least recently used first out, and no Secret larger than `MAX_KEPT` (a Secret bigger than a whole
configuration may be is read from the API each time it is needed, and dropped after the pass).

A copy serves a read while the watch confirms it: the watch shows the Secret held (or ours, or
being deleted) at the very resourceVersion of the copy. Copies come from our own reads, and from
the watch events of held input Secrets (so a restart, and a rotation, cost no read). A Secret the
watch has not shown yet, or shows without the in-use finalizer, is fetched and held (labelled and
finalized, one patch: engine/secretholds.py) once, however many objects ask at the same moment
(a thousand objects sharing one account Secret start together), and that fetched copy serves for
the few seconds until the watch delivers it. Only Secrets that exist are remembered: a missing one
must be looked for again when its watch-by-name says it appeared. At most `FETCHES` reads are in
flight at once, so a burst of objects referencing big Secrets holds a bounded number of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.names import WATCH_LABEL
from connector_operator.engine.secretcopies import SecretCopies
from connector_operator.engine.secretholds import SecretHolds
from connector_operator.engine.wakeups import Key, Wakeups
from connector_operator.kube.secrets import INPUT_ROLE, SecretMeta, Secrets, SecretView

# Long enough for the watch to deliver a freshly labelled Secret, short enough that a Secret
# deleted in between is not believed for long.
FETCHED_TTL = 10.0
FETCHES = 8  # Secret reads in flight at once


@dataclass
class SecretReads:
    inflight: dict[Key, asyncio.Future[SecretView | None]] = field(default_factory=dict)
    copies: SecretCopies = field(default_factory=SecretCopies)
    fetches: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(FETCHES))

    async def read(
        self,
        secrets: Secrets,
        wakeups: Wakeups,
        holds: SecretHolds,
        cache: Mapping[Key, SecretMeta],
        namespace: str,
        name: str,
    ) -> SecretView | None:
        key = (namespace, name)
        seen = cache.get(key)
        if seen is not None and holds.trusted(key, seen):
            kept = self.copies.current(key, seen.resource_version)
            if kept is not None:
                return kept
        else:
            recent = self.copies.recent(key, FETCHED_TTL)
            if recent is not None:
                return recent
        pending = self.inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(secrets, wakeups, holds, namespace, name))
            self.inflight[key] = pending
            pending.add_done_callback(lambda _: self.inflight.pop(key, None))
        # shield: one caller being cancelled (its object deleted) must not cancel the others' read.
        return await asyncio.shield(pending)

    def watched(self, meta: SecretMeta, data: Mapping[str, Any]) -> None:
        """A watch event of a Secret (`data`: its raw base64 data): its values replace the copy
        kept of that Secret, and are kept anew if it is an input Secret the operator holds (after
        a restart, the initial listing fills the cache this way, so no read is needed). Nothing
        else of it stays, and a Secret too large to keep is not even decoded."""
        key = (meta.namespace, meta.name)
        new = meta.held and not meta.managed and not needs_hold(meta)
        if key not in self.copies.entries and not new:
            return
        if sum(len(value) for value in data.values()) // 4 * 3 > self.copies.max_kept:
            self.copies.forget(key)
            return
        self.copies.offer(SecretView.with_data(meta, data), new=new)

    def forget(self, key: Key) -> None:
        self.copies.forget(key)

    async def _fetch(
        self, secrets: Secrets, wakeups: Wakeups, holds: SecretHolds, namespace: str, name: str
    ) -> SecretView | None:
        key = (namespace, name)
        # Under the Secret's lock: a release decided before this read has been written by now,
        # and one decided after it sees this object in kopf's index (engine/secretholds.py).
        async with holds.lock(key), self.fetches:
            view = await secrets.read(namespace, name)
            if view is not None and needs_hold(view):
                # Seen as it is now: the watch event our patch causes must not count as a change.
                wakeups.secret_changed(key, view.fingerprint)
                view = await secrets.label_for_watch(namespace, name)
            holds.releasing.discard(key)  # read fresh, after any release: the truth again
            if view is not None:
                self.copies.keep(view, fetched=True)
            else:
                self.copies.forget(key)
        return view


def needs_hold(view: SecretMeta) -> bool:
    """An input Secret that lacks either mark. Not the operator's own Secrets (token Secrets of
    other objects), and not a Secret being deleted (it may be read, but gets no new finalizer)."""
    labelled = view.labels.get(WATCH_LABEL) == INPUT_ROLE
    return not view.managed and not view.deleting and not (view.held and labelled)
