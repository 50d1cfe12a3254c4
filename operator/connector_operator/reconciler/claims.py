"""The ownership rules as a pass applies them: may it keep, adopt or take over this instance?

`domain/ownership.py` reads the tags; this adds what the cluster knows (kopf's index of live
objects, engine/liveobjects.py) and turns every "no" into the `Refused` outcome the pass
reports: `AdoptionConflict` (another object's, shared, not proven this object's) or `InvalidSpec`
(another connector). Nothing here calls the platform: the pass brings the instance it read.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.ownership import (
    CLAIM_PREFIX,
    IDENTITY_UID_PREFIX,
    Identity,
    claimed_object,
    identity_tag,
)
from connector_operator.engine.liveobjects import LiveObjects
from connector_operator.openconnectors.client import Instance
from connector_operator.reconciler.outcomes import Refused


@dataclass(frozen=True)
class Claims:
    identity: Identity
    live: LiveObjects | None  # None: kopf has not indexed the objects yet (refuse, to be safe)
    take_over: str | None  # the openconnectors.io/take-over-from annotation
    connector_key: str
    api_url: str

    def proven(self, instance: Instance) -> None:
        """An instance an ID from status names: it must carry this object's identity or claim."""
        if not self.identity.owns(instance.tags):
            raise Refused(
                outcomes.stalled(
                    Reason.ADOPTION_CONFLICT,
                    f"Remote instance {instance.id} (status.instanceID) does not carry this object's "
                    f"identity ({self.identity.uid_tag}): nothing is written to it or exported from it. "
                    "If it is this object's and the tag was removed on the platform, put the tag back; "
                    "to adopt an existing instance, create an object with spec.instanceID",
                )
            )
        self.own(instance, adopting=False)

    def own(self, instance: Instance, *, adopting: bool) -> None:
        """Refuse an instance that is another object's, or of another connector than the spec's.
        A take-over (adopting, with the annotation) may replace the identity it names."""
        foreign = self.identity.foreign(instance.tags)
        if foreign and not (adopting and self._taking_over(instance.id, foreign)):
            raise Refused(
                outcomes.stalled(
                    Reason.ADOPTION_CONFLICT,
                    f"Remote instance {instance.id} is tagged as another ConnectorInstance's: an instance "
                    "is never shared. Name another instance, or delete the other object first (if it is "
                    "gone with its cluster, annotate this object with openconnectors.io/take-over-from: "
                    "<its UID>)",
                )
            )
        if adopting and instance.element_key not in (None, self.connector_key):
            raise Refused(
                outcomes.stalled(
                    Reason.INVALID_SPEC,
                    f"Invalid spec: remote instance {instance.id} is an instance of connector "
                    f"{instance.element_key!r}, not of spec.connectorKey {self.connector_key!r}",
                )
            )

    def _taking_over(self, instance_id: int, foreign: list[str]) -> bool:
        """Whether the take-over annotation names the one identity on the instance, and its
        object is gone from every namespace this operator watches."""
        old = self.take_over
        uids = [t for t in foreign if t.startswith(IDENTITY_UID_PREFIX)]
        if old is None or uids != [identity_tag(old)]:
            return False
        live = self._live_owner(old, foreign)
        if live is not None:
            raise Refused(
                outcomes.stalled(
                    Reason.ADOPTION_CONFLICT,
                    f"Remote instance {instance_id} carries the identity of object UID {old} or the "
                    f"claim of {'/'.join(live)}, which exists: it is not taken over while that object "
                    "lives. Delete it first (its deletionPolicy applies), then request a reconcile",
                )
            )
        return True

    def _live_owner(self, uid: str, foreign: list[str]) -> tuple[str, str] | None:
        """The live object an instance is still another's: the UID's, or the object a claim of this
        cluster names (rebuilt, it reclaims the instance itself). Unknown before the index exists."""
        index, cluster = self.live, self.identity.cluster
        if index is None:
            return ("?", "?")
        claimed = (claimed_object(t, cluster) for t in foreign if cluster and t.startswith(CLAIM_PREFIX))
        return index.by_uid(uid) or next((c for c in claimed if c is not None and index.has_object(*c)), None)

    def shared(self, instance_id: int) -> None:
        """Refuse to adopt an instance another live object manages or observes: observing leaves
        no mark on the instance, so only the cluster can tell."""
        users = (
            self.live.users(instance_id, self.api_url, besides=self.identity.uid)
            if self.live is not None
            else [("?", "? (the operator has not listed its objects yet)")]
        )
        if users:
            raise Refused(
                outcomes.stalled(
                    Reason.ADOPTION_CONFLICT,
                    f"Remote instance {instance_id} is managed or observed by ConnectorInstance "
                    f"{'/'.join(users[0])}: an instance is never shared. Name another instance, or "
                    "delete that object first",
                )
            )
