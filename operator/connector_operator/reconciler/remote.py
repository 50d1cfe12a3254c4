"""The remote half of a reconcile pass: bring the platform's instance to the desired request, and
its token into the token Secret.

A `RemotePass` holds what one pass decided from (object, spec, state, platform URL, credentials,
desired request and its digest) and records what it learns in `facts` as it goes, so a failure
half-way still reports the progress made. The token Secret's half is reconciler/tokenexport.py's.
Creation is one POST: what this process sent and one
listing per endpoint say whether the object already has an instance (engine/creations.py); a
lost answer makes the next attempt search by the object's identity tag, so a crash between the
POST and the status write, or a repeated pass, never yields a second instance. Where the operator
has a cluster name, the same listing finds the instance of an object rebuilt from Git by its claim
(`Reclaimed`).

Ownership is proven on the platform, never read from status (domain/ownership.py): an instance ID
this process did not get from its own POST, or has not seen carrying the object's identity, is
checked with a GET before anything is written to it or exported from it (`verified`). Adopting
an instance (`spec.instanceID`, a switch to Full, a take-over) is refused while it carries another
object's identity, or while another live object manages or observes it (engine/liveobjects.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from connector_operator.api.spec import ConnectorInstanceSpec, effective_token_secret, observe_only
from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.desired import (
    DesiredInstance,
    Keyed,
    is_legacy,
)
from connector_operator.domain.drift import differences, planned_action
from connector_operator.domain.outcome import Outcome
from connector_operator.domain.ownership import Identity
from connector_operator.domain.tokensecret import TokenSecretSpec
from connector_operator.domain.transition import Facts
from connector_operator.engine.creations import NOT_CREATED
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials, Instance
from connector_operator.reconciler.claims import Claims
from connector_operator.reconciler.grants import Grants
from connector_operator.reconciler.listing import Listing
from connector_operator.reconciler.outcomes import Refused, verdict
from connector_operator.reconciler.runtime import Key, Runtime
from connector_operator.reconciler.tokenexport import TokenExport, observed

logger = logging.getLogger(__name__)


@dataclass
class RemotePass:
    rt: Runtime
    target: Target
    spec: ConnectorInstanceSpec
    state: ObjectState
    cache: Mapping[Key, SecretMeta]  # the watch's metadata of Secrets, no values
    api_url: str
    credentials: Credentials
    desired: DesiredInstance
    keyed: Keyed  # the operator's digest key, for this object
    digest: str  # of the desired request and the URL it goes to
    attempt: str  # of the digest and the account secrets: what a terminal verdict depends on
    facts: Facts
    gate: AccountGate | None = None  # the account's budget and circuit; None without an account
    secret: TokenSecretSpec = field(default_factory=TokenSecretSpec)  # what the token Secret should be
    account: AccountKey | None = None  # None: the object's own credentials Secret
    grants: Grants | None = None  # an OAuth object's (spec.oauth)

    @property
    def token_secret(self) -> str:
        return effective_token_secret(self.spec, self.target.name)

    async def run(self, *, remote_due: bool) -> Outcome:
        """Converge, export the token, and judge the instance the platform reports. A restarted
        operator checks at once an instance the status shows broken: its verdict is the platform's
        to give again, not memory's (nothing in memory would have made it Ready unseen)."""
        status = self.state.status
        remote_due = remote_due or (
            self.state.instance is None and (status.valid is False or bool(status.disabled))
        )
        try:
            fetched = await self._fetch(remote_due)
            if fetched is not None:
                self._remember(fetched)
            current = self.state.instance
            if current is None:
                return outcomes.success()  # in sync, and the token Secret is known to be current
            await self._export(current)
            if self.grants is not None and (not current.valid or current.disabled):
                raise await self.grants.required(reauthenticate=True)
        except Refused as refused:
            return refused.outcome
        return verdict(current.id, valid=current.valid, disabled=current.disabled)

    async def _fetch(self, remote_due: bool) -> Instance | None:
        try:
            return await (self._observe(remote_due) if self.observing else self._converge(remote_due))
        except errors.Unauthorized as error:
            if self.grants is None or self.state.status.instance_id is None:
                raise
            # An OAuth instance's 401 may be the provider's, not the account secrets': a call that
            # needs no instance (the search by the object's tag) tells which.
            raise await self.grants.unauthorized(error, self._searched) from None

    async def _search(self) -> list[Instance]:
        return await self.rt.instances.find_by_tag(
            self.api_url,
            self.credentials,
            self.identity.uid_tag,
            gate=self.gate,
            namespace=self.target.namespace,
        )

    async def _searched(self) -> None:
        await self._search()

    async def _listed(self, instance_id: int) -> Instance:
        """The instance as the search by the object's UID tag lists it, proven this object's (else
        by the usual GET): it needs no read of the instance, which may be refused (401) until the
        instance has a new grant."""
        listed = next((i for i in await self._search() if i.id == instance_id), None)
        if listed is None or not self.identity.owns(listed.tags) or self.identity.foreign(listed.tags):
            listed = await self._verify(instance_id)
        self.state.verified = instance_id
        return listed

    @property
    def observing(self) -> bool:
        return observe_only(self.spec)

    @property
    def identity(self) -> Identity:
        return Identity(
            self.target.uid, self.target.namespace, self.target.name, self.rt.settings.cluster_name
        )

    async def _converge(self, remote_due: bool) -> Instance | None:
        """The remote instance after the one call this pass needs, or None when it needs none."""
        instance_id, named = self.state.status.instance_id, self.spec.instance_id
        if named is not None and instance_id not in (None, named):
            instance_id = None  # spec.instanceID never changes: a status naming another is not ours
        if instance_id is None and named is not None:
            instance = await self._adopt(named)
        elif instance_id is not None and self.state.status.applied_digest is None and instance_id == named:
            # Observed (ObserveOnly), never written by this object: adopted like a named instance,
            # with the ownership check, never with a blind PUT (it may be someone else's by now).
            instance = await self._adopt(instance_id)
        elif instance_id is None:
            instance = await self._create_or_adopt()
        elif self.grants is not None and self.grants.pending() is not None:
            instance = await self._reauthenticate(instance_id)
        elif not self._applied():  # no applied digest (a status not written by this object) too
            instance = await self._update(instance_id)
        elif remote_due or not self._token_known():
            return await self._check(instance_id)
        else:
            return None
        self.facts.applied_digest = self.digest
        self.state.verified = instance.id
        return instance

    async def _observe(self, remote_due: bool) -> Instance | None:
        """ObserveOnly: read the named instance (never write it) and say what Full would do."""
        assert self.spec.instance_id is not None  # the CRD and the spec model require it
        instance_id = self.spec.instance_id
        status = self.state.status
        changed = status.observed_generation != self.target.generation
        if not (remote_due or not self._token_known() or (changed and self.state.instance is None)):
            if self.state.instance is not None:
                self.facts.planned_action = self._plan(self.state.instance)
            return None
        try:
            instance = await self._get(instance_id)
        except errors.NotFound:
            self.facts.planned_action = "Create"
            self.state.instance = None
            raise Refused(
                outcomes.stalled(
                    Reason.REMOTE_NOT_FOUND,
                    f"Remote instance {instance_id} (spec.instanceID) does not exist; with "
                    "managementPolicy ObserveOnly it is not created. Checked again at the next resync",
                )
            ) from None
        self._claims.own(instance, adopting=True)
        self.facts.planned_action = self._plan(instance)
        return instance

    def _plan(self, instance: Instance) -> str:
        # Configuration values are not compared in a dry run: the observer may not know them, and a
        # plan that followed her guesses would tell her which guess was right. Full would send the
        # spec's configuration whatever the platform holds.
        fields = differences(self.desired, instance.name, instance.tags, {})
        if self.desired.configuration:
            fields.append("configuration")
        return planned_action(fields)

    def _drift(self, instance: Instance) -> list[str]:
        found = differences(self.desired, instance.name, instance.tags, dict(instance.configuration))
        kept = self.state.normalized.get(self.digest, frozenset())
        return [f for f in found if f not in kept]

    @property
    def _claims(self) -> Claims:
        return Claims(
            self.identity, self.rt.live, self.target.take_over, self.spec.connector_key, self.api_url
        )

    async def _verify(self, instance_id: int) -> Instance:
        """The instance an ID from status names, shown to be this object's by its identity or
        claim; refused (nothing written, nothing exported) when it is not."""
        instance = await self._get(instance_id)
        self._claims.proven(instance)
        self.state.verified = instance_id
        return instance

    async def _get(self, instance_id: int) -> Instance:
        return await self.rt.instances.get(
            self.api_url, self.credentials, instance_id, gate=self.gate, namespace=self.target.namespace
        )

    async def _put(self, instance_id: int) -> Instance:
        """The desired request, sent to the instance (an update, adoption or repair)."""
        return await self.rt.instances.update(
            self.api_url,
            self.credentials,
            instance_id,
            self.desired.body(),
            gate=self.gate,
            namespace=self.target.namespace,
        )

    async def _adopt(self, instance_id: int) -> Instance:
        """Full with spec.instanceID (or after ObserveOnly): take the instance over with one PUT
        (never a POST), once it is shown to be no other object's and of the spec's connector."""
        try:
            found = await self._get(instance_id)
        except errors.NotFound:
            raise Refused(
                outcomes.stalled(
                    Reason.REMOTE_NOT_FOUND,
                    f"Remote instance {instance_id} (spec.instanceID) does not exist, so it cannot be "
                    "adopted. Checked again at the next resync",
                )
            ) from None
        self._claims.own(found, adopting=True)
        self._claims.shared(instance_id)
        adopted = await self._put(instance_id)
        self._endpoint.taken(instance_id)
        foreign = self.identity.foreign(found.tags)
        if foreign and self.target.take_over is not None:
            self._event(
                "Normal",
                "TakenOver",
                f"Took remote instance {instance_id} over from object UID {self.target.take_over}: it "
                f"now carries this object's identity (UID {self.target.uid})",
            )
        elif not self.identity.owns(found.tags):
            self._event("Normal", "Adopted", f"Adopted remote instance {instance_id}")
        return adopted

    async def _create_or_adopt(self) -> Instance:
        instances, url, credentials = self.rt.instances, self.api_url, self.credentials
        uid, creations, namespace = self.target.uid, self.rt.creations, self.target.namespace
        identity = self.identity
        endpoint = self._endpoint.key
        for _ in range(2):  # a second round only when a known instance turned out to be gone
            known = await creations.known(uid, endpoint, self._endpoint.owned, claim=identity.claim)
            if known is None:
                # Every instance of this object made where the operator has a cluster name carries
                # its claim: one search by claim finds a lost POST's and a rebuild's alike.
                tag = identity.claim or identity.uid_tag
                found = await instances.find_by_tag(
                    url, credentials, tag, gate=self.gate, namespace=namespace
                )
                creations.searched(uid)
                mine = [i for i in found if identity.owns(i.tags) and not identity.foreign(i.tags)]
                known = [(i.id, identity.uid_tag not in i.tags) for i in mine]
            if not known:
                return await self._post()
            (keep, reclaimed), *extra = sorted(known, key=lambda k: (k[1], k[0]))  # its own UID first
            # Remembered before anything else can fail: a search found it, and the search is not
            # repeated, so a failed PUT below must not leave the next pass a listing taken before
            # it existed (chaos found that second instance). Kept until status holds it.
            creations.posted(uid, keep)
            # Cannot happen through this operator; clean up if something else did it.
            for duplicate, _ in extra:
                await instances.delete(url, credentials, duplicate, gate=self.gate, namespace=namespace)
                creations.gone(uid, endpoint, duplicate)
            try:
                # The found instance may predate a spec change (or carry the UID the object had
                # before a rebuild): one PUT brings it to the desired state and identity.
                adopted = await self._put(keep)
            except errors.NotFound:
                creations.gone(uid, endpoint, keep)
                continue
            self._endpoint.taken(keep)
            if self.grants is not None and adopted.valid:
                await self.grants.spent()  # a lost POST's code: it made this instance
            if reclaimed:
                self._event(
                    "Normal",
                    "Reclaimed",
                    f"Reclaimed remote instance {keep}: it carries this object's claim ({identity.claim}), "
                    "made before the cluster was rebuilt; now tagged with this object's UID",
                )
            else:
                self._event(
                    "Normal", "Adopted", f"Found remote instance {keep} tagged with this object's UID"
                )
            return adopted
        raise errors.MalformedResponse(404, "the platform lists an instance of this object, then finds none")

    async def _post(self) -> Instance:
        """The one POST of a new instance (with an OAuth object's grant), remembered for the
        object's next attempts (engine/creations.py) even when its answer is lost."""
        creations, uid = self.rt.creations, self.target.uid
        body = self.desired.body()
        if self.grants is not None:
            body = await self.grants.body(body, creating=True)
        try:
            instance = await self.rt.instances.create(
                self.api_url, self.credentials, body, gate=self.gate, namespace=self.target.namespace
            )
        except errors.OpenConnectorsError as error:
            if not isinstance(error, NOT_CREATED):
                creations.uncertain.add(uid)  # it may exist: the next attempt searches
            if self.grants is not None:
                await self.grants.refused(error, creating=True)
            raise
        except BaseException:
            creations.uncertain.add(uid)  # cancelled, or a bug of ours: it may exist
            raise
        creations.posted(uid, instance.id)
        if self.grants is not None:
            await self.grants.spent()
        self._event("Normal", Reason.CREATING, f"Created remote instance {instance.id}")
        return instance

    @property
    def _endpoint(self) -> Listing:
        return Listing(self.rt, self.api_url, self.credentials, self.account, self.target, self.gate)

    async def _update(self, instance_id: int) -> Instance:
        try:
            if self.state.verified != instance_id:
                await self._verify(instance_id)  # an ID from status: proven this object's first
            instance = await self._put(instance_id)
        except errors.NotFound:
            return await self._recreate(instance_id)
        self._event("Normal", Reason.UPDATING, f"Updated remote instance {instance_id}")
        return instance

    async def _reauthenticate(self, instance_id: int) -> Instance:
        assert self.grants is not None
        instance = await self.grants.reauthenticate(instance_id, self.desired.body(), self._listed)
        self._event("Normal", "Reauthenticated", f"Re-authenticated remote instance {instance_id}")
        return instance

    async def _check(self, instance_id: int) -> Instance:
        """The periodic check: the instance as it is, repaired with one PUT if someone changed it."""
        try:
            instance = await (
                self._get(instance_id) if self.state.verified == instance_id else self._verify(instance_id)
            )
        except errors.NotFound:
            instance = await self._recreate(instance_id)
            self.facts.applied_digest = self.digest
            self.state.verified = instance.id
            return instance
        self._claims.own(instance, adopting=False)
        drift = self._drift(instance)
        if not drift:
            return instance
        repaired = await self._put(instance_id)
        self.facts.applied_digest = self.digest
        message = f"Remote instance {instance_id} was changed outside Kubernetes ({', '.join(drift)}); "
        # What the platform itself rewrites (it strips markup from names and tags, say) differs
        # again right after the PUT: not drift, and never repaired again for this request.
        normalized = frozenset(self._drift(repaired)) & frozenset(drift)
        if normalized:
            self.state.normalized = {self.digest: normalized}
            message += (
                f"the platform keeps its own form of {', '.join(sorted(normalized))}, not repaired again; "
            )
        self._event("Warning", Reason.DRIFT_CORRECTED, message + "restored to the spec")
        return repaired

    async def _recreate(self, gone: int) -> Instance:
        self._event("Warning", Reason.REMOTE_NOT_FOUND, f"Remote instance {gone} is gone; creating a new one")
        self.rt.creations.gone(self.target.uid, self._endpoint.key, gone)
        return await self._create_or_adopt()

    def _applied(self) -> bool:
        """Whether status says this very request was applied: its digest, or its digest as made
        before issue 9 (keyed with the UID), which an upgrade re-keys without a PUT."""
        applied = self.state.status.applied_digest
        if applied == self.digest:
            return True
        if is_legacy(applied) and applied == self.desired.legacy_digest(self.target.uid, self.api_url):
            self.facts.rekeyed_applied_digest = self.digest
            return True
        return False

    def _token_known(self) -> bool:
        """Whether the token Secret is current without asking the platform: the token is in memory,
        or (after a restart) the Secret is ours and consistent with status."""
        if self.state.instance is not None:
            return True
        known, rekeyed = self._token.known(self.state.status)
        if rekeyed is not None:
            self.facts.rekeyed_token_digest = rekeyed  # keyed for this object, as token_digest()
        return known

    def _remember(self, instance: Instance) -> None:
        previous = self.state.instance
        if previous is not None and previous.token != instance.token:
            self._event("Normal", "TokenChanged", "The platform issued a new token; the Secret follows")
        # Its configuration served this pass's drift check; kept, it would be what the platform
        # chose to send (up to an answer's 5 MiB) held per object until the next check.
        self.state.instance = replace(instance, configuration=())

    async def _export(self, current: Instance) -> None:
        """Record what the platform reports and write the token Secret (only when it differs)."""
        self.facts.observed = observed(current, self.keyed, self.spec.connector_key)
        await self._token.write(current)

    @property
    def _token(self) -> TokenExport:
        return TokenExport(
            self.rt.secrets,
            self.target,
            self.cache,
            self.token_secret,
            self.api_url,
            self.credentials,
            self.keyed,
            self.secret,
            self.spec.connector_key,
            self.desired.name,
        )

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.state.events.append((type_, str(reason), message))
