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
- A cluster rebuilt from Git (new UIDs, no status), where the operator has a cluster name: the
  same listing finds the instances carrying an object's claim tag (domain/ownership.py), which
  the object reclaims instead of creating one.

A create waits for the listing at most `LISTING_WAIT` seconds, then searches. A listing that
fails, or does not end within the client's page bound, fails the passes that waited for it, like
any failed call; for `LISTING_RETRY` seconds after that, creates there search
first, the old way, and then the listing is tried again. Whenever a known instance turns out to
be gone (a 404 where the memory or the listing said it exists), the object searches before its
next create too. A listing is kept for `LISTING_LIFETIME`, then taken again when needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from connector_operator.domain.ownership import CLAIM_PREFIX, IDENTITY_UID_PREFIX, ambiguous, marks
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials

# uid (or claim tag) -> ids of the remote instances carrying its identity (or claim) tag
Owned = dict[str, list[int]]
# (instance id, its tags with the identity prefix) for every listed instance that has one
Listed = list[tuple[int, list[str]]]
Lister = Callable[[], Awaitable[Listed]]
# An instance an object may have: its id, and whether only its claim says so (a rebuild's).
Known = list[tuple[int, bool]]

# The answer to anything but these may have been lost after the platform acted on the request:
# nothing was sent (the gate held it back, the secrets cannot be sent), or the platform said no.
NOT_CREATED = (errors.NotSent, errors.InvalidCredentials, errors.ClientError)
LISTING_RETRY = 300.0  # seconds of searching before each create after a failed listing
LISTING_LIFETIME = 600.0  # a listing is taken again after this (and its memory is freed)
# How long a create waits for the endpoint's listing before it searches by tag instead. Every
# namespace's creates wait for one listing, whose pages may queue behind other calls to the host
# (tenant-findings N10): the wait is bounded, and the listing goes on for the next ones.
LISTING_WAIT = 10.0
MAX_OWNED = 100_000  # identity tags a listing may hold; more fails it (a hostile platform's flood)


class ListingTooLarge(errors.MalformedResponse):
    pass


def endpoint_key(api_url: str, credentials: Credentials) -> str:
    """An endpoint: a platform URL and the account its credentials open (a digest, never the
    secrets themselves, so the key may sit in memory for the operator's lifetime). The host is
    compared as the allowlist compares it: one endpoint however its name is spelled."""
    parts = urlsplit(api_url)
    host = (parts.hostname or "").rstrip(".")
    port = f":{parts.port}" if parts.port not in (None, 443 if parts.scheme == "https" else 80) else ""
    url = urlunsplit((parts.scheme.lower(), f"{host}{port}", parts.path.rstrip("/"), "", ""))
    material = "\0".join((url, credentials.user_secret, credentials.organization_secret))
    return hashlib.sha256(material.encode()).hexdigest()


def owned_by_uid(listed: Listed) -> Owned:
    """uid -> instance ids, from the raw identity tags (one uid per instance: the first), and
    claim tag -> instance ids (one claim per instance: the first)."""
    owned: Owned = {}
    for instance_id, tags in listed:
        found = marks(tags)
        if ambiguous(found):
            continue  # two UIDs or two claims: planted by someone, nobody's (domain/ownership.py)
        uid = next(
            (t.removeprefix(IDENTITY_UID_PREFIX) for t in found if t.startswith(IDENTITY_UID_PREFIX)), None
        )
        if uid is not None:
            owned.setdefault(uid, []).append(instance_id)
        claim = next((t for t in found if t.startswith(CLAIM_PREFIX)), None)
        if claim is not None:
            owned.setdefault(claim, []).append(instance_id)
    if len(owned) > MAX_OWNED:
        raise ListingTooLarge(200, f"the platform listed more than {MAX_OWNED} instances of this operator")
    return owned


@dataclass
class _Listing:
    task: asyncio.Task[Owned]
    taken_at: float


@dataclass
class Creations:
    created: dict[str, int] = field(default_factory=dict)  # uid -> id POSTed, not yet in status
    uncertain: set[str] = field(default_factory=set)  # uids that may have an instance nobody knows of
    _listings: dict[str, _Listing] = field(default_factory=dict)
    _failed_at: dict[str, float] = field(default_factory=dict)  # endpoint -> monotonic time

    async def known(self, uid: str, endpoint: str, lister: Lister, claim: str | None = None) -> Known | None:
        """The remote instances this object may already have, as far as they are known without a
        search: None means search by tag. With `claim` (the operator has a cluster name), also those
        carrying only the object's claim. A failed listing raises its error."""
        if uid in self.uncertain:
            return None
        if uid in self.created:
            return [(self.created[uid], False)]
        now = time.monotonic()
        failed = self._failed_at.get(endpoint)
        if failed is not None and now - failed < LISTING_RETRY:
            return None
        listing = self._listings.get(endpoint)
        if listing is None or now - listing.taken_at >= LISTING_LIFETIME:
            self._prune(now)
            task = asyncio.create_task(self._listing(endpoint, lister))
            listing = self._listings[endpoint] = _Listing(task, now)
        try:
            async with asyncio.timeout(LISTING_WAIT):
                owned = await asyncio.shield(listing.task)
        except TimeoutError:
            return None  # the listing is slow: search, and leave it running for the next creates
        except asyncio.CancelledError:
            if not listing.task.done():
                raise  # this pass was cancelled; the listing goes on for the others
            return None  # the listing was forgotten (a peering pause): search
        own = owned.get(uid, [])
        claimed = [i for i in owned.get(claim, []) if i not in own] if claim is not None else []
        return [(i, False) for i in own] + [(i, True) for i in claimed]

    async def _listing(self, endpoint: str, lister: Lister) -> Owned:
        try:
            return owned_by_uid(await lister())
        except Exception:  # not a cancellation: that is forget_listings or _prune at work
            # Kept as a time, not as the failed task (whose traceback reaches the pass's secrets).
            self._failed_at[endpoint] = time.monotonic()
            self._listings.pop(endpoint, None)
            raise

    def _prune(self, now: float) -> None:
        for endpoint in [
            e for e, listing in self._listings.items() if now - listing.taken_at >= LISTING_LIFETIME
        ]:
            self._listings.pop(endpoint).task.cancel()
        for endpoint in [e for e, at in self._failed_at.items() if now - at >= LISTING_RETRY]:
            del self._failed_at[endpoint]

    def posted(self, uid: str, instance_id: int) -> None:
        self.created[uid] = instance_id

    def searched(self, uid: str) -> None:
        """A search by tag told the truth about this object: it is no longer uncertain."""
        self.uncertain.discard(uid)

    def recorded(self, uid: str, instance_id: int) -> None:
        """The API server holds `instance_id` in the object's status: no need to remember it. (Only
        that one: a recreate's new id is remembered until status holds it in turn.)"""
        if self.created.get(uid) == instance_id:
            del self.created[uid]

    def gone(self, uid: str, endpoint: str, instance_id: int) -> None:
        """A known instance no longer exists on the platform. What stood for the search said it
        did, so the object searches before its next create (the platform may lag, or lie)."""
        if self.created.get(uid) == instance_id:
            del self.created[uid]
        self.uncertain.add(uid)
        listing = self._listings.get(endpoint)
        if listing is not None and listing.task.done() and not listing.task.cancelled():
            owned = listing.task.result() if listing.task.exception() is None else {}
            for ids in owned.values():
                if instance_id in ids:
                    ids.remove(instance_id)

    def forget(self, uid: str) -> None:
        """The object is gone."""
        self.created.pop(uid, None)
        self.uncertain.discard(uid)

    def forget_listings(self) -> None:
        """After a peering pause another copy may have created instances: list again."""
        for listing in self._listings.values():
            listing.task.cancel()
        self._listings.clear()
        self._failed_at.clear()
