"""What the passes know of an object between them (`Tracked`, `ObjectState`), and the object a pass
works on (`Target`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.meta import Meta
from connector_operator.api.names import (
    GROUP,
    KIND,
    PAUSED_ANNOTATION,
    RECONCILE_REQUEST_ANNOTATION,
    TAKE_OVER_ANNOTATION,
    VERSION,
)
from connector_operator.api.status import ConnectorInstanceStatus
from connector_operator.domain.transition import is_ready, parse_status
from connector_operator.kube.secrets import Owner
from connector_operator.openconnectors.client import Instance

Key = tuple[str, str]  # (namespace, name)


@dataclass
class ObjectState:
    """The passes' memory of their object. They are the only writer of status, so this copy is
    authoritative: it never waits for its own write to come back through the watch."""

    status: ConnectorInstanceStatus  # what the passes know, written or not
    instance: Instance | None = None  # last seen remote instance (holds the token; memory only)
    stalled_on: tuple[int, str] | None = None  # (generation, attempt digest) judged impossible
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    # Fields the platform rewrites in its own form, for the request digest they were seen with:
    # the drift check skips them (domain/drift.py), or it would PUT at every resync.
    normalized: dict[str, frozenset[str]] = field(default_factory=dict)
    # The instance this process has proven to be the object's own: its own POST's answer, a PUT it
    # sent after checking, or a GET that showed the object's identity. An ID read from status is
    # not proof (anyone who may write the status subresource can set it): until it is verified,
    # nothing is written to it or exported from it (reconciler/remote.py).
    verified: int | None = None
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
    take_over: str | None = None  # the openconnectors.io/take-over-from value: an old object's UID

    @property
    def owner(self) -> Owner:
        return Owner(self.name, self.uid)

    @property
    def ref(self) -> Ref:
        return object_ref(self.namespace, self.name, self.uid)


Ref = Mapping[str, Any]  # what an Event is about: an object's reference (apiVersion, kind, metadata)
Event = tuple[str, str, str]  # (type, reason, message)
# Posts Events about an object: the kopf shell's `post_events` (handlers/instances.py).
EventSink = Callable[[Ref, Sequence[Event]], None]


def object_ref(namespace: str, name: str, uid: str) -> Ref:
    """An Event's involvedObject: the object's reference, not its body."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"namespace": namespace, "name": name, "uid": uid},
    }


@dataclass(eq=False, slots=True)
class Tracked:
    """What the passes know of one object: the parts of its latest body they read, and their own
    memory of it. Kept instead of the body: a status write of ours comes back as an event too, and
    the body is mostly status and metadata the passes never read.

    Between passes both are kept serialized (`park`): the spec as its JSON, the state pickled. As
    pydantic models and parsed JSON they took about 15 KiB per object at rest; serialized, 2 to
    3 KiB (bench/README.md, "Memory per object"). A pass pays one parse of each (`thaw`), about
    50 microseconds."""

    uid: str
    spec_json: str = "{}"
    generation: int = 0
    annotations: tuple[bool, str | None] = (False, None)  # (paused, reconcile request)
    take_over: str | None = None  # the take-over-from annotation
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""
    deleting: bool = False
    next_check: float = 0.0  # monotonic: when the next platform check is due
    born: float = field(default_factory=time.monotonic)
    # While the last pass waits for an input Secret that nothing watches yet: its interest
    # (engine/secretwaits.py), held until the next pass.
    waiting: contextlib.ExitStack | None = None
    # Another copy of the operator may have written status while this one was paused (peering):
    # the next event's status replaces what the passes remembered.
    reseed: bool = False
    _state: ObjectState | None = None  # during a pass
    _parked: bytes = b""  # between passes: the pickled ObjectState (our own bytes, never a peer's)

    @property
    def spec(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.spec_json)
        return parsed

    def observe(self, body: Mapping[str, Any]) -> None:
        meta = Meta.of(body)
        if meta.generation != self.generation or self.spec_json == "{}":  # a spec change bumps it
            self.spec_json = json.dumps(body.get("spec") or {}, separators=(",", ":"))
        self.generation = meta.generation
        self.annotations = annotation_marks(meta.annotations)
        self.take_over = take_over_from(meta.annotations)
        self.finalizers = meta.finalizers
        self.resource_version = meta.resource_version
        self.deleting = meta.deleting

    def seed(self, status: ConnectorInstanceStatus) -> None:
        """Start the passes' memory afresh from a stored status."""
        self._state = ObjectState(status=status)
        self.park()
        self.reseed = False

    def thaw(self) -> ObjectState:
        """The state, for a pass; `park` it again after."""
        if self._state is None:
            self._state = pickle.loads(self._parked)  # noqa: S301  (pickled by `park`, in this process)
        return self._state

    def park(self) -> None:
        """Serialize the state between passes (events are posted by then: none is kept)."""
        if self._state is not None:
            self._parked = pickle.dumps(self._state, protocol=pickle.HIGHEST_PROTOCOL)
            self._state = None


def tracked_from(body: Mapping[str, Any], resync: float) -> Tracked:
    status = parse_status(body.get("status"))
    tracked = Tracked(uid=Meta.of(body).uid)
    tracked.seed(status)
    # Spread the first platform check of already-created objects over the resync window:
    # a restarting operator must not fire a thousand GETs at once (and needs none to be correct).
    tracked.next_check = time.monotonic() + (
        random.uniform(0, resync) if status.instance_id is not None else 0
    )
    return tracked


# Longer values are compared and recorded as a digest: status does not grow with an annotation.
MAX_REQUEST_TOKEN = 256


MAX_UID = 128  # a Kubernetes UID is 36 characters; anything longer names no object


def take_over_from(annotations: Any) -> str | None:
    value = annotations.get(TAKE_OVER_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_UID]


def annotation_marks(annotations: Any) -> tuple[bool, str | None]:
    """(paused, reconcile request) from an object's annotations."""
    if not isinstance(annotations, Mapping):
        return False, None
    paused = annotations.get(PAUSED_ANNOTATION) == "true"
    request = annotations.get(RECONCILE_REQUEST_ANNOTATION)
    if not isinstance(request, str):
        return paused, None
    if len(request) > MAX_REQUEST_TOKEN:
        request = "sha256:" + hashlib.sha256(request.encode()).hexdigest()
    return paused, request
