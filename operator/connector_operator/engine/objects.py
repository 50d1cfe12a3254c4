"""What the passes know of an object between them (`Tracked`, `ObjectState`), and the object a pass
works on (`Target`).

What is kept between passes must not grow with what a tenant writes into a spec: a valid spec can be
about 1 MB (200 literal values of 4 KiB, 32 annotations and 16 templates of 4 KiB), and keeping its
JSON cost 101 MiB per 100 such objects, so 300 of them passed the chart's memory limit
(tenant-findings N3). A spec's JSON is kept only up to `MAX_KEPT_SPEC` bytes; past that the record
keeps its generation (which the API server bumps at every change of the spec, so it names the spec
as a digest would) and size, and the pass reads the object again (`spec_for_pass`): one GET of a big
object per pass, against 1 MB per object for as long as it exists. The same spec in the bodies kopf
holds is cut to its skeleton (`cut_spec`). Of the templates, the state keeps a verdict and a keyed
digest (domain/tokensecret.py `TemplateMemory`), never the compiled templates."""

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
from connector_operator.domain.tokensecret import TemplateMemory
from connector_operator.domain.transition import is_ready, parse_status
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.finalizers import read_instance
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
    # The templates' verdict for a generation, and what they last rendered (no compiled template).
    templates: TemplateMemory | None = None
    # The delay before the next attempt of a pass that failed, set with its status (for
    # status.nextAttemptAt) and taken by the scheduling: the backoff counts each failure once.
    retry_delay: float | None = None
    # OAuth: the consent URL the platform gave for a digest of what it was asked (app, callback,
    # scopes, platform), so that a pass waiting for a person asks again only when those change.
    consent: tuple[str, str] | None = None
    # OAuth: why the last grant was refused (denied, another consent's, the provider's refusal),
    # said again by the passes that follow until a grant is used: the refusal removed the grant
    # from its Secret, and that change wakes the object at once.
    grant_refused: str | None = None
    # OAuth: the digest of a grant sent in a re-authentication whose answer never came: not sent
    # again while the instance shows it took (a code works once).
    grant_sent: str | None = None
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


# Specs of at most this many bytes of JSON are kept between passes: the examples' take about 0.5 KiB,
# one that names twenty Secrets about 2 KiB. A bigger one is read again by each pass (`spec_for_pass`).
MAX_KEPT_SPEC = 4096
# Set in an event body's metadata by `cut_spec` (the bytes of the long strings it emptied): its spec
# is a skeleton. In the event's dict only, which nothing sends anywhere.
CUT_MARK = "x-openconnectors-cut-spec"


def cut_spec(body: Mapping[str, Any]) -> None:
    """Empty the long strings of a big spec in the body kopf keeps: literal configuration values,
    the token Secret's annotations and templates, which only a pass reads (from the object read
    again: `spec_for_pass`). At start-up kopf holds every listed body until all are indexed, and
    300 tenant specs of 1 MB peaked at 418 MiB after a restart, over the chart's limit: a crash
    loop (tenant-findings N3). What the indexes and the event handler read stays: the structure,
    the Secret names, the keys, and a value "" is still a value. A deletion's body, which kopf's
    delete handler reads whole, is left as it is."""
    meta, spec = body.get("metadata"), body.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict) or meta.get("deletionTimestamp"):
        return
    places = _long_strings(spec)
    size = sum(len(mapping[key]) for mapping, key in places)
    if size <= MAX_KEPT_SPEC:
        return
    for mapping, key in places:
        mapping[key] = ""
    meta[CUT_MARK] = size


def _long_strings(spec: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Where the long strings a tenant may write into a spec are: (mapping, key) of each."""
    places: list[tuple[dict[str, Any], Any]] = []
    for entry in spec.get("configuration") or []:
        if isinstance(entry, dict) and isinstance(entry.get("value"), str):
            places.append((entry, "value"))
    token_secret = spec.get("tokenSecret")
    token_secret = token_secret if isinstance(token_secret, dict) else {}
    template = token_secret.get("template")
    for mapping in (
        token_secret.get("annotations"),
        template.get("data") if isinstance(template, dict) else None,
    ):
        if isinstance(mapping, dict):
            places += [(mapping, key) for key, value in mapping.items() if isinstance(value, str)]
    return places


@dataclass(eq=False, slots=True)
class Tracked:
    """What the passes know of one object: the parts of its latest body they read, and their own
    memory of it. Kept instead of the body: a status write of ours comes back as an event too, and
    the body is mostly status and metadata the passes never read.

    Between passes both are kept serialized (`park`): the spec as its JSON (when small), the state
    pickled. As pydantic models and parsed JSON they took about 15 KiB per object at rest;
    serialized, 2 to 3 KiB (bench/README.md, "Memory per object"). A pass pays one parse of each
    (`thaw`), about 50 microseconds. The generation names the spec (the API server bumps it at every
    change of the spec): a spec too big to keep is known by it alone, and read again for a pass."""

    uid: str
    spec_json: str | None = None  # at most MAX_KEPT_SPEC bytes; None: not kept, read it again
    spec_bytes: int = -1  # the size of the spec's JSON; -1 before the first event
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
    def spec(self) -> dict[str, Any] | None:
        """The spec, if it was small enough to keep (`spec_for_pass` reads a bigger one)."""
        if self.spec_json is None:
            return None
        parsed: dict[str, Any] = json.loads(self.spec_json)
        return parsed

    def observe(self, body: Mapping[str, Any]) -> None:
        meta = Meta.of(body)
        if meta.generation != self.generation or self.spec_bytes < 0:  # a spec change bumps it
            text = json.dumps(body.get("spec") or {}, separators=(",", ":"))
            cut = body["metadata"].get(CUT_MARK) if isinstance(body.get("metadata"), Mapping) else None
            self.spec_bytes = len(text) + (cut or 0)
            self.spec_json = text if len(text) <= MAX_KEPT_SPEC and cut is None else None
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


async def spec_for_pass(
    tracked: Tracked, kube: KubeAPI | None, key: Key
) -> tuple[int, Mapping[str, Any]] | None:
    """The spec a pass works on, with its generation: the one kept, or else the object as stored
    now (maybe a generation whose event is still on its way). None: it is gone, or another object
    has its name by now (its events say so). Raises KubeError when the read fails."""
    kept = tracked.spec
    if kept is not None:
        return tracked.generation, kept
    if kube is None:  # only a Runtime built by hand has no client
        return None
    raw = await read_instance(kube, *key)
    if raw is None or Meta.of(raw).uid != tracked.uid:
        return None
    spec = raw.get("spec")
    return Meta.of(raw).generation, spec if isinstance(spec, Mapping) else {}


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
