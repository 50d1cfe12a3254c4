"""What a daemon knows of its object between passes, and the object a pass works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.status import ConnectorInstanceStatus
from connector_operator.domain.transition import is_ready
from connector_operator.kube.secrets import Owner
from connector_operator.openconnectors.client import Instance


@dataclass
class ObjectState:
    """A daemon's memory of its object. The daemon is the only writer of status, so its copy is
    authoritative: it never waits for its own write to come back through the watch."""

    status: ConnectorInstanceStatus  # what the daemon knows, written or not
    instance: Instance | None = None  # last seen remote instance (holds the token; memory only)
    stalled_on: tuple[int, str] | None = None  # (generation, attempt digest) judged impossible
    attempt: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    # Fields the platform rewrites in its own form, for the request digest they were seen with:
    # the drift check skips them (domain/drift.py), or it would PUT at every resync.
    normalized: dict[str, frozenset[str]] = field(default_factory=dict)
    written: ConnectorInstanceStatus = field(init=False)  # what the API server last accepted

    def __post_init__(self) -> None:
        self.written = self.status

    @property
    def ready(self) -> bool:
        return is_ready(self.status)


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str
    uid: str
    generation: int
    spec: Mapping[str, Any]
    paused: bool = False  # the openconnectors.io/paused annotation is "true"
    reconcile_request: str | None = None  # the openconnectors.io/reconcile-requested-at value, if any

    @property
    def owner(self) -> Owner:
        return Owner(self.name, self.uid)
