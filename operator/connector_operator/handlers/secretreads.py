"""Reading a referenced Secret: from the watch cache, or once from the API for everyone waiting.

The label-filtered watch caches every Secret the operator has labelled. A Secret it has not seen
yet is fetched and labelled once, however many objects ask at the same moment (a thousand
objects sharing one account Secret start together), and the fetched copy serves for the few
seconds until the watch delivers it. Only Secrets that exist are remembered: a missing one must
be looked for again when its watch-by-name says it appeared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.handlers.wakeups import Key, Wakeups
from connector_operator.kube.secrets import Secrets, SecretView

# Long enough for the watch to deliver a freshly labelled Secret, short enough that a Secret
# deleted in between is not believed for long.
FETCHED_TTL = 10.0


@dataclass
class SecretReads:
    inflight: dict[Key, asyncio.Future[SecretView | None]] = field(default_factory=dict)
    fetched: dict[Key, tuple[float, SecretView]] = field(default_factory=dict)

    async def read(
        self, secrets: Secrets, wakeups: Wakeups, cache: Mapping[Key, SecretView], namespace: str, name: str
    ) -> SecretView | None:
        key = (namespace, name)
        cached = cache.get(key)
        if cached is not None:
            self.fetched.pop(key, None)
            return cached
        recent = self.fetched.get(key)
        if recent is not None and time.monotonic() - recent[0] < FETCHED_TTL:
            return recent[1]
        pending = self.inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(secrets, wakeups, namespace, name))
            self.inflight[key] = pending
            pending.add_done_callback(lambda _: self.inflight.pop(key, None))
        # shield: one caller being cancelled (its object deleted) must not cancel the others' read.
        return await asyncio.shield(pending)

    async def _fetch(
        self, secrets: Secrets, wakeups: Wakeups, namespace: str, name: str
    ) -> SecretView | None:
        view = await secrets.read(namespace, name)
        if view is not None:
            if not view.managed:
                # Seen as it is now: the watch event our label causes must not count as a change.
                wakeups.secret_changed((namespace, name), view.fingerprint)
                await secrets.label_for_watch(namespace, name)
            self.fetched[(namespace, name)] = (time.monotonic(), view)
        return view
