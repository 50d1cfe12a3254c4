"""Whose a remote instance is: the identity and claim tags the operator puts on it, read back.

A remote instance belongs to a ConnectorInstance when it carries that object's UID tag
(`k8s-uid:<uid>`) or, where the operator has a cluster name, its claim tag
(`k8s-claim:<cluster>/<namespace>/<name>`). Nothing else is proof: not the ID in the object's
status (anyone who may write the status subresource can set it), not the object-name tag (a
label for humans browsing the platform). The claim survives a rebuild from Git, where every
object gets a new UID: within one cluster a (namespace, name) pair names one object at a time.

The marks are made of characters the platform never escapes (hex, letters, digits, `-`, `:`,
`/`), so they are compared exactly as the platform returns them: decoding entities here would let
a tenant's `&#107;8s-uid:...` tag become a mark. An instance carrying more than one UID tag or
more than one claim is nobody's (`ambiguous`): the operator never writes one, so a tenant planted
it. Tags the operator sends back (an Orphan's release) are unescaped, as the platform returns user
tags HTML-escaped (`&amp;`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from connector_operator.api.names import IDENTITY_TAG_PREFIX

IDENTITY_UID_PREFIX = f"{IDENTITY_TAG_PREFIX}uid:"
OBJECT_PREFIX = f"{IDENTITY_TAG_PREFIX}object:"
CLAIM_PREFIX = f"{IDENTITY_TAG_PREFIX}claim:"
_CLUSTER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def is_cluster_name(value: str) -> bool:
    """A DNS-1123 label: it goes into a tag, and a tag's `/` separates its parts."""
    return _CLUSTER_NAME.fullmatch(value) is not None


def identity_tag(uid: str) -> str:
    """The tag that ties a remote instance to exactly one Kubernetes object."""
    return f"{IDENTITY_UID_PREFIX}{uid}"


def object_tag(namespace: str, name: str) -> str:
    """For humans browsing the platform; never trusted."""
    return f"{OBJECT_PREFIX}{namespace}/{name}"


def claim_tag(cluster: str, namespace: str, name: str) -> str:
    """The tag that ties a remote instance to (cluster, namespace, name): a rebuilt cluster's object."""
    return f"{CLAIM_PREFIX}{cluster}/{namespace}/{name}"


def ambiguous(tags: Iterable[str]) -> bool:
    """More than one UID tag, or more than one claim: never the operator's doing."""
    found = marks(tags)
    uids = sum(1 for t in found if t.startswith(IDENTITY_UID_PREFIX))
    return uids > 1 or len(found) - uids > 1


def uid_of(tag: str) -> str | None:
    return tag.removeprefix(IDENTITY_UID_PREFIX) if tag.startswith(IDENTITY_UID_PREFIX) else None


@dataclass(frozen=True)
class Identity:
    """One object's marks: its UID, and its claim where the operator has a cluster name."""

    uid: str
    namespace: str
    name: str
    cluster: str | None = None

    @property
    def uid_tag(self) -> str:
        return identity_tag(self.uid)

    @property
    def claim(self) -> str | None:
        return claim_tag(self.cluster, self.namespace, self.name) if self.cluster else None

    def tags(self) -> list[str]:
        """What every instance of this object carries, in this order."""
        own = [self.uid_tag, object_tag(self.namespace, self.name)]
        return [*own, self.claim] if self.claim else own

    def owns(self, tags: Iterable[str]) -> bool:
        """Whether an instance with these tags is this object's: its UID tag, or its claim (and
        no second mark of the same kind beside it)."""
        found = set(tags)
        mine = self.uid_tag in found or (self.claim is not None and self.claim in found)
        return mine and not ambiguous(found)

    def foreign(self, tags: Iterable[str]) -> list[str]:
        """The marks of other objects on an instance: it is theirs, never to be shared. An old UID
        beside this object's own claim is not foreign: it is this object before a rebuild."""
        found = list(tags)
        claimed = self.claim is not None and self.claim in found and not ambiguous(found)
        return [
            t
            for t in found
            if (t.startswith(IDENTITY_UID_PREFIX) and t != self.uid_tag and not claimed)
            or (t.startswith(CLAIM_PREFIX) and t != self.claim)
        ]

    def released(self, tags: Iterable[str]) -> list[str]:
        """The tags with this object's own marks removed (Orphan hands the instance over), the
        others as they were sent: unescaped."""
        mine = {self.uid_tag, object_tag(self.namespace, self.name)}
        if self.claim is not None:
            mine.add(self.claim)
        return [html.unescape(t) for t in tags if t not in mine]


def marks(tags: Iterable[str]) -> list[str]:
    """The operator's marks among tags (UID and claim tags): what the listing keeps."""
    return [t for t in tags if t.startswith((IDENTITY_UID_PREFIX, CLAIM_PREFIX))]


def claimed_object(tag: str, cluster: str) -> tuple[str, str] | None:
    """(namespace, name) of a claim tag of `cluster`, or None (another cluster's, or not a claim)."""
    own = f"{CLAIM_PREFIX}{cluster}/"
    if not tag.startswith(own):
        return None
    namespace, _, name = tag.removeprefix(own).partition("/")
    return (namespace, name) if namespace and name else None


def strays(
    listed: Iterable[tuple[int, list[str]]],
    live_uid: Callable[[str], bool],
    live_object: Callable[[str, str], bool],
    cluster: str | None,
) -> list[int]:
    """The listed instances that carry this operator's marks but belong to no live object: a UID
    tag of no object, and (with a cluster name) a claim of no object. An instance claimed by
    another cluster is that cluster's: not judged here."""
    found: list[int] = []
    for instance_id, tags in listed:
        own = marks(tags)
        if ambiguous(own):
            continue  # planted marks: not this operator's to report
        uids = [u for u in map(uid_of, own) if u is not None]
        claims = [t for t in own if t.startswith(CLAIM_PREFIX)]
        objects = [o for o in (claimed_object(t, cluster) for t in claims) if o] if cluster else []
        if claims and not objects:
            continue  # another cluster's (or, without a cluster name, one we cannot judge)
        if not uids and not objects:
            continue
        if any(map(live_uid, uids)) or any(live_object(*o) for o in objects):
            continue
        found.append(instance_id)
    return sorted(found)
