"""The services the passes share for the operator's lifetime (kept in kopf's `memo`).

`Runtime` is built and wired in one place, reconciler/assemble.py: its constructor makes what
depends on the settings alone, and `assemble` sets what needs a callback (the scheduler and its
pass, the Events sink, the stray reports). Nothing here calls anything back.
"""

from __future__ import annotations

import datetime
import functools
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.hosts import HostPolicy
from connector_operator.domain.outcome import Backoff
from connector_operator.engine.accounts import Accounts
from connector_operator.engine.creations import Creations
from connector_operator.engine.deleteretry import DeleteRetries
from connector_operator.engine.liveobjects import LiveObjects
from connector_operator.engine.objects import Event, EventSink, Tracked
from connector_operator.engine.retries import Retries
from connector_operator.engine.scheduler import Scheduler
from connector_operator.engine.secretholds import SecretHolds
from connector_operator.engine.secretreads import SecretReads
from connector_operator.engine.secretwaits import SecretWaits
from connector_operator.engine.wakeups import Key, Wakeups
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.namespaces import Namespaces
from connector_operator.kube.secrets import SecretMeta, Secrets, SecretView
from connector_operator.kube.status import StatusWriter
from connector_operator.openconnectors.budget import AccountGate, BudgetSpec, Gates
from connector_operator.openconnectors.client import InstancesClient
from connector_operator.reconciler.series import Readiness
from connector_operator.reconciler.strays import StrayReports
from connector_operator.settings import Settings

__all__ = ["Event", "EventSink", "Key", "Runtime", "utcnow"]


def utcnow() -> str:
    """Now, as status timestamps are written (RFC 3339, seconds)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_seconds(delay: float) -> str:
    """`delay` seconds from now, as status timestamps are written (rounded up to the second)."""
    return datetime.datetime.fromtimestamp(math.ceil(time.time() + delay), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@dataclass
class Runtime:
    settings: Settings
    instances: InstancesClient
    secrets: Secrets
    status: StatusWriter
    # The operator's own HMAC key for the digests in status (kube/digestkey.py); never logged.
    digest_key: bytes = field(repr=False)
    wakeups: Wakeups = field(default_factory=Wakeups)
    reads: SecretReads = field(default_factory=SecretReads)
    namespaces: Namespaces | None = None  # namespace labels, for cluster accounts' selectors
    kube: KubeAPI | None = None  # for the odd direct read (does an account exist?)
    home: str = "default"  # the operator's own namespace (its digest key; cluster accounts' Secrets)
    accounts: Accounts = field(default_factory=Accounts)  # each account's spec and credentials
    gates: Gates = field(default_factory=Gates)  # each account's request budget and circuit
    creations: Creations = field(default_factory=Creations)  # what is known of instances being created
    clock: Callable[[], str] = utcnow  # the only source of status timestamps
    # The ConnectorInstances the watch reported, and when their passes run (reconciler/instance.py).
    tracked: dict[Key, Tracked] = field(default_factory=dict)
    # kopf's Secret index, as the passes read it: known from the first ConnectorInstance event on.
    secret_index: Mapping[Key, SecretMeta] | None = None
    # kopf's index of ConnectorInstances (which exist, which instances they name); likewise.
    live: LiveObjects | None = None
    # Objects waiting to be Ready at a new generation, for oco_time_to_ready_seconds.
    readiness: Readiness = field(default_factory=Readiness)
    # Made from the settings alone:
    backoff: Backoff = field(init=False)
    retries: Retries[Any] = field(init=False)  # passes of instances and accounts: one rule
    delete_retries: DeleteRetries = field(init=False)
    # Set by reconciler/assemble.py, the one place that wires callbacks:
    scheduler: Scheduler = field(init=False)
    strays: StrayReports = field(init=False)  # what the listings found unowned
    events: EventSink = field(init=False)

    def __post_init__(self) -> None:
        self.backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap)
        self.retries = Retries(self.backoff)
        self.delete_retries = DeleteRetries(Retries(self.backoff))

    @functools.cached_property
    def hosts(self) -> HostPolicy:
        """Where the operator may send requests: the platform team's allowlist, never a tenant's."""
        return HostPolicy.from_settings(self.settings.allowed_api_hosts, self.settings.allow_insecure_http)

    @functools.cached_property
    def waits(self) -> SecretWaits:
        return SecretWaits(self.secrets, self.wakeups, clusterwide=not self.settings.namespaces)

    @functools.cached_property
    def holds(self) -> SecretHolds:
        """The in-use finalizer on input Secrets: who holds what, and releasing."""
        return SecretHolds(self.secrets, self.reads.copies)

    def gate(self, account: AccountKey, budget: BudgetSpec | None) -> AccountGate:
        """The account's gate. A namespaced ConnectorAccount serves one namespace, whose failures
        alone may open its circuit; a cluster account's needs two namespaces' (circuit.py)."""
        return self.gates.for_account(account, budget, str(account), single_tenant=bool(account.namespace))

    async def read_secret(
        self, cache: Mapping[Key, SecretMeta], namespace: str, name: str
    ) -> SecretView | None:
        return await self.reads.read(self.secrets, self.wakeups, self.holds, cache, namespace, name)
