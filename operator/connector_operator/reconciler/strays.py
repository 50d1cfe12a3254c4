"""Stray instances: reported, never deleted.

A stray is a remote instance that carries this operator's marks (a UID or claim tag) but belongs
to no live object it watches: left by a cluster rebuilt without a cluster name, by a finalizer
removed by hand, or by another cluster of the same name. The per-endpoint listing that one-POST
creates already take (engine/creations.py) shows them for free. They are reported where a
platform team looks: the account's status (`strayInstances`, `strayInstanceIDs`), a metric for
endpoints without an account, and one Warning Event per stray (at most `EVENTS_PER_LISTING` a
listing, then one that sums up the rest). Deleting them is a person's call:
one may hold the only copy of an OAuth consent, or be the instance another cluster still uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector_operator import metrics
from connector_operator.api.account import AccountKind
from connector_operator.api.names import ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND, GROUP, VERSION
from connector_operator.domain.accounts import AccountKey
from connector_operator.engine.accounts import Accounts, waiter
from connector_operator.engine.objects import EventSink, Ref
from connector_operator.engine.wakeups import Key

MAX_EVENTED = 100_000  # stray ids remembered as reported, over all endpoints (then no more Events)
EVENTS_PER_LISTING = 20  # beyond these, one summary Event: a listing never floods the event queue


@dataclass(frozen=True)
class Scope:
    """Where a listing was taken: the endpoint (creations.endpoint_key), its host, its account."""

    endpoint: str
    host: str
    account: AccountKey | None  # None: an object's own credentials Secret


@dataclass
class StrayReports:
    accounts: Accounts  # an account's strays are its daemon's to write into its status
    wake: Callable[[Key], None]
    events: EventSink
    _evented: dict[str, set[int]] = field(default_factory=dict)  # endpoint -> ids with an Event
    _by_host: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # host -> endpoint -> ids

    def report(self, found: list[int], scope: Scope, ref: Ref) -> None:
        """Record what one listing found. `ref`: the object whose create took the listing, for the
        Events of an endpoint without an account."""
        endpoint, host, account = scope.endpoint, scope.host, scope.account
        if account is not None:
            state = self.accounts.state(account)
            if state.strays != tuple(found):
                state.strays = tuple(found)
                self.wake(waiter(account))  # its daemon writes the status
            ref = account_ref(account)
        else:
            self._set(host, endpoint, set(found))
        evented = self._evented.setdefault(endpoint, set())
        evented &= set(found)  # one that is no stray any more is reported again if it becomes one
        room = MAX_EVENTED - sum(map(len, self._evented.values()))
        new = [i for i in found if i not in evented][: max(0, room)]
        evented.update(new)
        posted = [
            (
                "Warning",
                "StrayInstance",
                f"Remote instance {instance_id} carries this operator's identity or claim tags "
                "but belongs to no ConnectorInstance it watches; it is left in place. Adopt it "
                "(spec.instanceID, with openconnectors.io/take-over-from) or delete it on the platform",
            )
            for instance_id in new[:EVENTS_PER_LISTING]
        ]
        if len(new) > EVENTS_PER_LISTING:
            posted.append(
                (
                    "Warning",
                    "StrayInstance",
                    f"{len(new) - EVENTS_PER_LISTING} more stray remote instances at {host} (see the "
                    "account's status.strayInstanceIDs, or oco_stray_instances): left in place",
                )
            )
        if posted:
            self.events(ref, posted)
        if not evented:
            del self._evented[endpoint]

    def taken(self, instance_id: int, scope: Scope) -> None:
        """An object adopted or reclaimed `instance_id`: no stray any more, whatever the last listing
        said (a GitOps rebuild applies objects while the first ones already list)."""
        if scope.account is not None:
            state = self.accounts.state(scope.account)
            if state.strays is not None and instance_id in state.strays:
                state.strays = tuple(i for i in state.strays if i != instance_id)
                self.wake(waiter(scope.account))
        else:
            ids = self._by_host.get(scope.host, {}).get(scope.endpoint)
            if ids is not None and instance_id in ids:
                self._set(scope.host, scope.endpoint, ids - {instance_id})
        evented = self._evented.get(scope.endpoint)
        if evented is not None:
            evented.discard(instance_id)

    def _set(self, host: str, endpoint: str, ids: set[int]) -> None:
        by_endpoint = self._by_host.setdefault(host, {})
        if ids:
            by_endpoint[endpoint] = ids
        else:
            by_endpoint.pop(endpoint, None)
        metrics.STRAY_INSTANCES.labels(host).set(sum(map(len, by_endpoint.values())))
        if not by_endpoint:
            del self._by_host[host]


def account_ref(key: AccountKey) -> Ref:
    kind = ACCOUNT_KIND if key.kind is AccountKind.CONNECTOR_ACCOUNT else CLUSTER_ACCOUNT_KIND
    raw: dict[str, Any] = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": key.name}}
    if key.namespace:
        raw["metadata"]["namespace"] = key.namespace
    return raw
