"""Creating a remote instance with one POST, and still never two for one object.

Every create used to search the platform for the object's identity tag first, so that a POST
whose answer never reached status could not be followed by a second one. That is a second call
per create. What the search guarded against, and what stands for it now:

- This process POSTed and the answer did not reach status. Either the answer came and the status
  write failed (the instance's id is remembered here), or the answer was lost: a timeout, a
  dropped connection, a 5xx after the request went out. The object is then *uncertain*, and its
  next create searches by tag as before.
- An earlier process, or another copy while this one was paused by peering, POSTed and died
  before its status write. One listing per platform and account of the instances that carry an
  identity tag finds those; it is taken before this process's first create there, and again
  after a peering pause (`forget_listings`).

A listing that fails, or does not end within the client's page bound, fails the passes that
waited for it, like any failed call; for `LISTING_RETRY` seconds after that, creates there search
first, the old way, and then the listing is tried again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connector_operator.domain.desired import IDENTITY_UID_PREFIX
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials
from connector_operator.openconnectors.instance import Instance

# uid -> ids of the remote instances carrying its identity tag
Owned = dict[str, list[int]]
Lister = Callable[[], Awaitable[list[Instance]]]

# The answer to these may have been lost after the platform acted on the request.
AMBIGUOUS = (errors.TransportError, errors.ServerError)
LISTING_RETRY = 300.0  # seconds of searching before each create after a failed listing


def endpoint_key(api_url: str, credentials: Credentials) -> str:
    """An endpoint: a platform URL and the account its credentials open (a digest, never the
    secrets themselves, so the key may sit in memory for the operator's lifetime)."""
    material = "\0".join((api_url, credentials.user_secret, credentials.organization_secret))
    return hashlib.sha256(material.encode()).hexdigest()


def owned_by_uid(listed: list[Instance]) -> Owned:
    owned: Owned = {}
    for instance in listed:
        for tag in instance.tags:
            if tag.startswith(IDENTITY_UID_PREFIX):
                owned.setdefault(tag.removeprefix(IDENTITY_UID_PREFIX), []).append(instance.id)
    return owned


@dataclass
class Creations:
    created: dict[str, int] = field(default_factory=dict)  # uid -> id POSTed, not yet in status
    uncertain: set[str] = field(default_factory=set)  # uids whose POST answer was lost
    _listings: dict[str, asyncio.Task[Owned]] = field(default_factory=dict)
    _failed_at: dict[str, float] = field(default_factory=dict)  # endpoint -> monotonic time

    async def known(self, uid: str, endpoint: str, lister: Lister) -> list[int] | None:
        """The ids of the remote instances this object may already have, as far as they are known
        without a search: None means search by tag. A failed listing raises its error."""
        if uid in self.uncertain:
            return None
        if uid in self.created:
            return [self.created[uid]]
        task = self._listings.get(endpoint)
        if task is not None and task.done() and (task.cancelled() or task.exception() is not None):
            if time.monotonic() - self._failed_at.get(endpoint, 0.0) < LISTING_RETRY:
                return None
            task = None
        if task is None:
            task = self._listings[endpoint] = asyncio.create_task(self._listing(endpoint, lister))
        try:
            owned = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                raise  # this pass was cancelled; the listing goes on for the others
            return None  # the listing was forgotten (a peering pause): search
        return list(owned.get(uid, []))

    async def _listing(self, endpoint: str, lister: Lister) -> Owned:
        try:
            return owned_by_uid(await lister())
        except BaseException:
            self._failed_at[endpoint] = time.monotonic()
            raise

    def posted(self, uid: str, instance_id: int) -> None:
        self.created[uid] = instance_id

    def searched(self, uid: str) -> None:
        """A search by tag told the truth about this object: it is no longer uncertain."""
        self.uncertain.discard(uid)

    def recorded(self, uid: str) -> None:
        """Status holds the object's instance: nothing to remember any more."""
        self.created.pop(uid, None)
        self.uncertain.discard(uid)

    def gone(self, uid: str, endpoint: str, instance_id: int) -> None:
        """The listed or remembered instance no longer exists on the platform."""
        if self.created.get(uid) == instance_id:
            del self.created[uid]
        task = self._listings.get(endpoint)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            ids = task.result().get(uid)
            if ids and instance_id in ids:
                ids.remove(instance_id)

    def forget_listings(self) -> None:
        """After a peering pause another copy may have created instances: list again."""
        for task in self._listings.values():
            task.cancel()
        self._listings.clear()
        self._failed_at.clear()
