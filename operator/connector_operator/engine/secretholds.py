"""The in-use finalizer on input Secrets: held while a ConnectorInstance references them, released
(finalizer and watch label) when none does any more.

Why: a namespace deletion may remove the Secrets before the ConnectorInstances. Without a hold,
an object then has no credentials to delete its remote instance with, and nobody may restore
them in a terminating namespace. Held, a Secret being deleted stays (Terminating, readable) until
no object references it, the way a PersistentVolumeClaim in use by a Pod does.

Holding: the first read of an input Secret (engine/secretreads.py) adds the finalizer together
with the watch label, in one patch; a Secret already held costs nothing more, however many objects
share it. The token Secret is no input (owned through ownerReferences, deleted by the operator)
and is never held; a Secret already being deleted cannot get a new finalizer and is read as is.

Releasing: one patch removes both marks once no ConnectorInstance of the namespace references the
Secret, as kopf's `secret_users` index tells. Two moments ask: an object that stopped referencing
it (a spec change, or the object gone: `references_changed`), and every event of a held Secret
(handlers/secrets.py). The second also covers whatever changed while the operator was down (the
Secret watch's initial listing replays every held Secret, and kopf indexes every object before
any handler runs), and retries a failed release at the latest when someone deletes the Secret.

Race: a Secret must not lose its finalizer to a release decided just as another object started to
use it. kopf indexes an object before any of its handlers run, so an object that reads a Secret is
in the index by then. The release consults the index and announces itself (`releasing`) under a
per-Secret lock, with no await in between; a reader that finds the Secret in `releasing` does not
trust the watch cache's copy (it may still show the finalizer) but reads and holds the Secret
again under the same lock, after the release.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from connector_operator.api.meta import Meta
from connector_operator.api.names import WATCH_LABEL
from connector_operator.api.spec import parse_spec, referenced_secrets
from connector_operator.engine.secretcopies import SecretCopies
from connector_operator.engine.wakeups import Key
from connector_operator.kube.api import KubeError
from connector_operator.kube.secrets import INPUT_ROLE, SecretMeta, Secrets

logger = logging.getLogger(__name__)

# kopf's `secret_users` index: (namespace, Secret name) -> the names of the objects using it.
Users = Mapping[Key, Collection[str]]


@dataclass
class SecretHolds:
    secrets: Secrets
    copies: SecretCopies  # the values kept, which a release makes stale
    locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)
    # Secrets whose release was decided; the watch cache's copy of them is stale until the watch
    # shows them without the finalizer (or gone).
    releasing: set[Key] = field(default_factory=set)
    # Per object: the generation last seen and the input Secrets its spec named then.
    references: dict[Key, tuple[int, frozenset[str]]] = field(default_factory=dict)

    def lock(self, key: Key) -> asyncio.Lock:
        """The lock under which a Secret is held or released (alive while someone uses it)."""
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks[key] = asyncio.Lock()
        return lock

    def trusted(self, key: Key, view: SecretMeta) -> bool:
        """Whether what the watch shows may serve a read (with a copy of the values at that very
        resourceVersion) without holding the Secret first."""
        return key not in self.releasing and (view.managed or view.held or view.deleting)

    def watched(self, key: Key, view: SecretMeta | None) -> None:
        """The watch shows the Secret without the finalizer (or gone): any release has landed, and
        the cache can be trusted again. (A copy with the finalizer may predate the release.)"""
        if view is None or not view.held:
            self.releasing.discard(key)

    async def references_changed(
        self,
        key: Key,
        event_type: str | None,
        body: Mapping[str, Any],
        users: Users,
        cache: Mapping[Key, SecretMeta],
    ) -> None:
        """Release the Secrets an object no longer references: after a spec change that dropped
        them, or once the object is gone. kopf has already re-indexed (or forgotten) the object.
        Only a new generation is parsed: status writes and kopf's bookkeeping cost nothing here."""
        namespace = key[0]
        generation = Meta.of(body).generation
        if event_type == "DELETED":
            dropped = self.references.pop(key, (0, frozenset()))[1]
        else:
            previous = self.references.get(key)
            if previous is not None and previous[0] == generation:
                return
            current = input_secrets(body)
            self.references[key] = (generation, current)
            # First sight (a start): nothing to compare with; the Secret events cover the past.
            dropped = previous[1] - current if previous is not None else frozenset()
        for name in sorted(dropped):
            await self.release_if_unused((namespace, name), users, cache.get((namespace, name)))

    async def release_if_unused(self, key: Key, users: Users, view: SecretMeta | None) -> bool:
        """Remove the finalizer and the watch label from an input Secret nobody references.
        `view` is the latest known copy; None when the watch has not shown it (yet): the watch
        event that shows it asks again."""
        if view is None or view.managed or not (view.held or view.labels.get(WATCH_LABEL) == INPUT_ROLE):
            return False
        async with self.lock(key):
            store = users.get(key)
            if store is not None and len(store) > 0:
                return False
            self.releasing.add(key)  # no await since the index was read: no reader slipped in
            self.copies.forget(key)
            try:
                await self.secrets.release_input(*key)
            except KubeError as error:
                self.releasing.discard(key)  # still held: the cache is right
                # Retried at the Secret's next event: at the latest when someone deletes it.
                logger.warning("could not release Secret %s/%s: HTTP %s", key[0], key[1], error.status)
                return False
        logger.info("released Secret %s/%s: no ConnectorInstance references it", *key)
        return True


def input_secrets(body: Mapping[str, Any]) -> frozenset[str]:
    """The input Secrets an object's spec references; none for a spec that does not parse (as in
    the `secret_users` index: such an object is stalled and reads nothing)."""
    try:
        return referenced_secrets(parse_spec(dict(body.get("spec") or {})))
    except ValidationError:
        return frozenset()
