"""The endpoint's listing a creating object shares with the others of its endpoint: whose call it
is, how it is keyed, and the strays it reports (engine/creations.py keeps the listings)."""

from __future__ import annotations

from dataclasses import dataclass

from connector_operator.api.names import IDENTITY_TAG_PREFIX
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.ownership import strays
from connector_operator.engine.creations import endpoint_key
from connector_operator.engine.objects import Target
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials, host_of
from connector_operator.reconciler.runtime import Runtime
from connector_operator.reconciler.strays import Scope


@dataclass(frozen=True)
class Listing:
    rt: Runtime
    api_url: str
    credentials: Credentials
    account: AccountKey | None  # None: the object's own credentials Secret
    target: Target
    gate: AccountGate | None = None

    @property
    def scope(self) -> Scope:
        return Scope(endpoint_key(self.api_url, self.credentials), host_of(self.api_url), self.account)

    def taken(self, instance_id: int) -> None:
        self.rt.strays.taken(instance_id, self.scope)

    @property
    def lister(self) -> str | None:
        """Whose call the endpoint's listing is: a ClusterConnectorAccount's is every namespace's
        creates' to wait for, so the operator's own (not behind the first caller's queue: N10); an
        endpoint of a namespace's own Secret or ConnectorAccount is that namespace's, whose hosts
        and credentials it chose (as the operator's own, a tenant naming many endpoints at slow
        hosts would have held slots beyond her share)."""
        shared = self.account is not None and not self.account.namespace
        return None if shared else self.target.namespace

    @property
    def key(self) -> str:
        """Which listing this object's creates share: the endpoint's, taken by one lister (the
        account's gate and `lister`'s slots). Keyed by the endpoint alone, an object of a
        namespace's own Secret holding a cluster account's credentials, creating first, took the
        account's listing in its namespace and without the account's gate (review)."""
        return f"{endpoint_key(self.api_url, self.credentials)}/{self.account or ''}/{self.lister or ''}"

    async def owned(self) -> list[tuple[int, list[str]]]:
        """The endpoint's instances with the operator's marks; the strays among them reported."""
        listed = await self.rt.instances.find_tagged_with_prefix(
            self.api_url,
            self.credentials,
            IDENTITY_TAG_PREFIX,
            gate=self.gate,
            namespace=self.lister,
        )
        live = self.rt.live
        if live is not None:
            unowned = strays(listed, live.has_uid, live.has_object, self.rt.settings.cluster_name)
            self.rt.strays.report(unowned, self.scope, self.target.ref)
        return listed
