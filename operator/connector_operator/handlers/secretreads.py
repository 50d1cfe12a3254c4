"""Reading a referenced Secret: from the watch cache, or once from the API for everyone waiting.

The label-filtered watch caches every Secret the operator has labelled. A Secret it has not seen
yet, or has seen without the in-use finalizer, is fetched and held (labelled and finalized, one
patch: handlers/secretholds.py) once, however many objects ask at the same moment (a thousand
objects sharing one account Secret start together), and the fetched copy serves for the few
seconds until the watch delivers it. Only Secrets that exist are remembered: a missing one must
be looked for again when its watch-by-name says it appeared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.api.names import WATCH_LABEL
from connector_operator.handlers.secretholds import SecretHolds
from connector_operator.handlers.wakeups import Key, Wakeups
from connector_operator.kube.secrets import INPUT_ROLE, Secrets, SecretView

# Long enough for the watch to deliver a freshly labelled Secret, short enough that a Secret
# deleted in between is not believed for long.
FETCHED_TTL = 10.0


@dataclass
class SecretReads:
    inflight: dict[Key, asyncio.Future[SecretView | None]] = field(default_factory=dict)
    fetched: dict[Key, tuple[float, SecretView]] = field(default_factory=dict)

    async def read(
        self,
        secrets: Secrets,
        wakeups: Wakeups,
        holds: SecretHolds,
        cache: Mapping[Key, SecretView],
        namespace: str,
        name: str,
    ) -> SecretView | None:
        key = (namespace, name)
        cached = cache.get(key)
        if cached is not None and holds.trusted(key, cached):
            self.fetched.pop(key, None)
            return cached
        recent = self.fetched.get(key)
        if recent is not None and time.monotonic() - recent[0] < FETCHED_TTL:
            return recent[1]
        pending = self.inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(secrets, wakeups, holds, namespace, name))
            self.inflight[key] = pending
            pending.add_done_callback(lambda _: self.inflight.pop(key, None))
        # shield: one caller being cancelled (its object deleted) must not cancel the others' read.
        return await asyncio.shield(pending)

    async def _fetch(
        self, secrets: Secrets, wakeups: Wakeups, holds: SecretHolds, namespace: str, name: str
    ) -> SecretView | None:
        key = (namespace, name)
        # Under the Secret's lock: a release decided before this read has been written by now,
        # and one decided after it sees this object in kopf's index (handlers/secretholds.py).
        async with holds.lock(key):
            view = await secrets.read(namespace, name)
            if view is not None and needs_hold(view):
                # Seen as it is now: the watch event our patch causes must not count as a change.
                wakeups.secret_changed(key, view.fingerprint)
                view = await secrets.label_for_watch(namespace, name)
            holds.releasing.discard(key)  # read fresh, after any release: the truth again
            if view is not None:
                self.fetched[key] = (time.monotonic(), view)
        return view


def needs_hold(view: SecretView) -> bool:
    """An input Secret that lacks either mark. Not the operator's own Secrets (token Secrets of
    other objects), and not a Secret being deleted (it may be read, but gets no new finalizer)."""
    labelled = view.labels.get(WATCH_LABEL) == INPUT_ROLE
    return not view.managed and not view.deleting and not (view.held and labelled)
