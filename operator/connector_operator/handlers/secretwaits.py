"""Waiting for a Secret the label-filtered watch cannot see, without a connection per waiter.

An object waits for a Secret that does not exist yet (GitOps often applies objects before their
Secrets), or for someone else's Secret in the way of its token Secret. A watch per waiting object
held one pooled connection each for minutes, and four hundred of them starved every other call.
Here all waiters share one metadata-only watch per namespace (one for the whole cluster when the
operator watches every namespace), which runs only while someone waits, and wakes exactly the
objects waiting for the name that changed. Nothing of the other Secrets is kept.

No change is lost between a pass and its wait: the waiter registers first, then looks at the
Secret once more (`Waiter.changed`); the watch reports every change after the registration, and
a watch the server ends is resumed where it stopped; after a failed one every waiter looks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from connector_operator.handlers.wakeups import Key, Wakeups
from connector_operator.kube.api import KubeError
from connector_operator.kube.secrets import Secrets

logger = logging.getLogger(__name__)

WATCH_SECONDS = 300.0  # the server ends a watch after this; it is then restarted if still needed
RETRY_SECONDS = (1.0, 30.0)  # after a failed watch: first delay, cap


@dataclass
class SecretWaits:
    secrets: Secrets
    wakeups: Wakeups
    clusterwide: bool
    # (namespace, Secret name) -> the daemons (namespace, object name) waiting for it
    waiting: dict[Key, set[Key]] = field(default_factory=dict)
    watches: dict[str | None, asyncio.Task[None]] = field(default_factory=dict)

    def _scope(self, namespace: str) -> str | None:
        return None if self.clusterwide else namespace

    @contextlib.contextmanager
    def interest(self, namespace: str, secret: str, waiter: Key) -> Iterator[None]:
        """While inside, a change of `namespace/secret` wakes `waiter`."""
        key = (namespace, secret)
        self.waiting.setdefault(key, set()).add(waiter)
        scope = self._scope(namespace)
        if scope not in self.watches:
            self.watches[scope] = asyncio.create_task(self._watch(scope), name=f"secret-waits:{scope or '*'}")
        try:
            yield
        finally:
            users = self.waiting.get(key, set())
            users.discard(waiter)
            if not users:
                self.waiting.pop(key, None)
            if not any(self._scope(ns) == scope for ns, _ in self.waiting):
                task = self.watches.pop(scope, None)
                if task is not None:
                    task.cancel()

    async def _watch(self, scope: str | None) -> None:
        since: str | None = None
        delay = RETRY_SECONDS[0]
        while True:
            try:
                async for version, changed in self.secrets.watch_names(scope, WATCH_SECONDS, since):
                    since, delay = version, RETRY_SECONDS[0]
                    for waiter in self.waiting.get(changed, ()) if changed is not None else ():
                        self.wakeups.wake(waiter)
            except (KubeError, OSError, ValueError) as error:
                # The watch is gone and its position may be too (410): start over from now, and
                # let every waiter look again, since changes in between were not seen.
                logger.debug("Secret watch for %s failed (%s); again in %.0fs", scope or "*", error, delay)
                since = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_SECONDS[1])
                self._wake_all(scope)

    def _wake_all(self, scope: str | None) -> None:
        for (namespace, _), waiters in list(self.waiting.items()):
            if self._scope(namespace) == scope:
                for waiter in waiters:
                    self.wakeups.wake(waiter)

    async def close(self) -> None:
        tasks = list(self.watches.values())
        self.watches.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
