"""Reading referenced Secrets and owning the token Secret, through `kube.api`.

Two rules shape this module. An input Secret that the operator reads gets the watch label, so
that the operator's single, server-side-filtered Secret watch sees its later changes (and
nothing else: memory and traffic do not grow with unrelated Secrets), and the in-use finalizer,
so that it outlives every object that depends on it (engine/secretholds.py). And the token
Secret is written only when it is ours: created by us, or labelled managed-by us and owned by
this very object; anything else is a conflict the user must resolve, never an overwrite.

What the Secret watch keeps of a Secret is a `SecretMeta`: metadata and fingerprints, no value
(anyone who may create a Secret can label it for the watch). A read gives a `SecretView`, which
adds the decoded data, for the pass that needs it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.meta import Meta
from connector_operator.api.names import (
    GROUP,
    IN_USE_FINALIZER,
    KIND,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SHAPE_ANNOTATION,
    VERSION,
    WATCH_LABEL,
)
from connector_operator.kube.api import MERGE_PATCH, KubeAPI, KubeError, Skipped

# For core types a strategic merge patch merges `metadata.finalizers` as a set: adding ours keeps
# everyone else's, and `$deleteFromPrimitiveList` removes ours alone (a JSON merge patch would
# replace the whole list, and a JSON patch would need the index). Checked on the API server.
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# What `watch_names` reports for an event too large to read (kube.api.MAX_LINE): some Secret of
# the scope changed. Never a real (namespace, name): "*" is no valid name.
UNREAD = ("*", "*")


INPUT_ROLE = "input"
TOKEN_ROLE = "token"


# What the watch keeps of a token Secret's small fields: longer values are none of ours.
MAX_TOKEN_FIELD = 4096
MAX_SHAPE = 128
MAX_KEYS = 64  # a token Secret has 3 keys and at most 16 of templates; more are none of ours

# (token, owner uid) -> (digest keyed as status.tokenDigest is, or None without a key; the same
# digest as made before issue 9). The digests belong to the domain, which this layer cannot import.
TokenDigests = Callable[[str, str], tuple[str | None, str]]


@dataclass(frozen=True)
class TokenFacts:
    """What the watch keeps of a token Secret's content: digests of the token, never the token.
    Enough to tell, after a restart or before a write, whether the Secret holds a given token."""

    digest: str | None  # keyed for the Secret's owner, as status.tokenDigest; None: no key known
    legacy_digest: str  # as made before issue 9 (keyed with the owner's UID)
    instance_id: str | None  # None also when absent, not text, or too long to be ours
    api_url: str | None


@dataclass(frozen=True)
class SecretMeta:
    """What the operator keeps of a watched Secret: metadata, and a fingerprint of the content.
    No value: a tenant can put 1 MB into each of her Secrets, and label them for the watch.
    Of the labels only the operator's own two are kept (a Secret can carry a megabyte of labels)."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    owner_uid: str | None = None
    held: bool = False  # carries the in-use finalizer
    deleting: bool = False  # has a deletionTimestamp: held by a finalizer, still readable
    resource_version: str = ""
    fingerprint: str = ""  # of the content (sha256), for change detection; not reversible
    token: TokenFacts | None = None  # for a Secret labelled managed by us, with an owner
    type: str = "Opaque"
    shape: str | None = None  # our SHAPE_ANNOTATION on a token Secret: what it was written for
    keys: tuple[str, ...] = ()  # of a token Secret's data (at most MAX_KEYS): what a write replaces

    @property
    def managed(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], token_digests: TokenDigests | None = None) -> SecretMeta:
        meta, common = raw.get("metadata") or {}, Meta.of(raw)
        labels = {k: v for k, v in (meta.get("labels") or {}).items() if k in OUR_LABELS}
        owner_uid = _owner_uid(meta)
        data = raw.get("data") or {}
        token = None
        if (
            token_digests is not None
            and owner_uid is not None
            and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
        ):
            token = _token_facts(data, owner_uid, token_digests)
        return cls(
            name=common.name,
            namespace=common.namespace,
            labels=labels,
            owner_uid=owner_uid,
            held=IN_USE_FINALIZER in common.finalizers,
            deleting=common.deleting,
            resource_version=common.resource_version,
            fingerprint=fingerprint(data),
            token=token,
            type=str(raw.get("type") or "Opaque")[:MAX_TOKEN_FIELD],
            shape=_short(common.annotations.get(SHAPE_ANNOTATION)),
            keys=tuple(sorted(data))[:MAX_KEYS] if token is not None else (),
        )


def _short(value: Any) -> str | None:
    """One of our own small annotation values; anything else is none of ours."""
    return value if isinstance(value, str) and len(value) <= MAX_SHAPE else None


@dataclass(frozen=True)
class SecretView(SecretMeta):
    """A Secret as read from the API: its metadata and its decoded data. Held only for the pass
    that reads it, and in the bounded cache of recent reads (engine/secretreads.py)."""

    data: Mapping[str, str | None] = field(default_factory=dict, repr=False)  # None: not UTF-8 text
    all_labels: Mapping[str, str] = field(default_factory=dict)  # `labels` keeps only ours
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], token_digests: TokenDigests | None = None) -> SecretView:
        meta = raw.get("metadata") or {}
        kept = SecretMeta.from_raw(raw, token_digests)
        # Labels and annotations only of a Secret of ours (a token Secret, compared before a write):
        # a tenant's input Secret may carry a megabyte of them, and reads of inputs are cached.
        ours = kept.managed
        return cls.with_data(
            kept,
            raw.get("data") or {},
            (meta.get("labels") or {}) if ours else {},
            (meta.get("annotations") or {}) if ours else {},
        )

    @classmethod
    def with_data(
        cls,
        meta: SecretMeta,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> SecretView:
        """`meta` (made from the same raw Secret) with `data`, the raw Secret's base64 data, decoded."""
        fields = {f.name: getattr(meta, f.name) for f in dataclasses.fields(SecretMeta)}
        return cls(
            **fields, data=decode(data), all_labels=dict(labels or {}), annotations=dict(annotations or {})
        )


OUR_LABELS = frozenset({WATCH_LABEL, MANAGED_BY_LABEL})


def ours(current: SecretMeta, owner: Owner) -> bool:
    """Whether a token Secret may be written for `owner`: managed by us and owned by it, or a token
    Secret of ours that lost its owner reference (a restore, say). A managed Secret without an
    owner that is no token Secret (the operator's digest key) is nobody's to overwrite: an object
    naming it as its token Secret would have destroyed the key (tenant-findings N14)."""
    if not current.managed:
        return False
    if current.owner_uid is None:
        return current.labels.get(WATCH_LABEL) == TOKEN_ROLE
    return current.owner_uid == owner.uid


def _owner_uid(meta: Mapping[str, Any]) -> str | None:
    owner: Mapping[str, Any] = next(
        (o for o in meta.get("ownerReferences") or [] if o.get("kind") == KIND and o.get("controller")),
        {},
    )
    uid = owner.get("uid")
    if uid is None:
        return None
    uid = str(uid)
    # A UID is 36 characters; a longer one, someone's invention, must still never match nor be None
    # (None means "no owner"), and must not cost more than a digest.
    return uid if len(uid) <= 64 else "sha256:" + hashlib.sha256(uid.encode()).hexdigest()


def fingerprint(data: Mapping[str, Any]) -> str:
    """A digest of a Secret's raw (base64) data, for change detection; not reversible to the values.
    Every key and value is length-prefixed, so no two contents share a fingerprint by concatenation."""
    digest = hashlib.sha256()
    for key in sorted(data):
        for part in (str(key), str(data[key])):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part.encode())
    return digest.hexdigest()


def _token_facts(data: Mapping[str, str], owner_uid: str, token_digests: TokenDigests) -> TokenFacts | None:
    token = _decoded(data.get("token"), limit=None)
    if token is None:
        return None
    digest, legacy = token_digests(token, owner_uid)
    return TokenFacts(
        digest=digest,
        legacy_digest=legacy,
        instance_id=_decoded(data.get("instanceID"), MAX_TOKEN_FIELD),
        api_url=_decoded(data.get("apiURL"), MAX_TOKEN_FIELD),
    )


def _decoded(value: str | None, limit: int | None) -> str | None:
    """One base64 value as text; None when absent, not UTF-8, or longer than `limit` characters."""
    if value is None or (limit is not None and len(value) > (limit + 2) // 3 * 4):
        return None
    try:
        text = base64.b64decode(value).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return text if limit is None or len(text) <= limit else None


def decode(data: Mapping[str, str]) -> dict[str, str | None]:
    decoded: dict[str, str | None] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError):
            decoded[key] = None  # binary data is no configuration value; reported as "not UTF-8 text"
    return decoded


def encode(data: Mapping[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


@dataclass(frozen=True)
class SecretShape:
    """What a token Secret is besides its data: its type, and the labels and annotations it gets
    beside the operator's own labels (all of them the operator's to write)."""

    type: str = "Opaque"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def held_by(self, view: SecretView) -> bool:
        """Whether `view` has this type, and these labels and annotations (others may be there too)."""
        return (
            view.type == self.type
            and all(view.all_labels.get(k) == v for k, v in self.labels.items())
            and all(view.annotations.get(k) == v for k, v in self.annotations.items())
        )


class SecretConflict(Exception):
    """The token Secret's name is taken by a Secret this object does not own."""


@dataclass(frozen=True)
class Owner:
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


class Secrets:
    def __init__(self, api: KubeAPI) -> None:
        self._api = api

    @staticmethod
    def _path(namespace: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")

    async def read(self, namespace: str, name: str) -> SecretView | None:
        raw = await self._api.request("GET", self._path(namespace, name))
        return SecretView.from_raw(raw) if raw is not None else None

    async def label_for_watch(self, namespace: str, name: str) -> SecretView | None:
        """Hold an input Secret, in one patch: the watch label, so the operator's label-filtered
        watch delivers its changes, and the in-use finalizer, so it stays (readable, Terminating)
        when deleted while an object depends on it. None when the Secret is gone. Not for a Secret
        being deleted: the API server refuses a new finalizer then."""
        patch = {"metadata": {"labels": {WATCH_LABEL: INPUT_ROLE}, "finalizers": [IN_USE_FINALIZER]}}
        raw = await self._api.request(
            "PATCH", self._path(namespace, name), body=patch, content_type=STRATEGIC_MERGE_PATCH
        )
        return SecretView.from_raw(raw) if raw is not None else None

    async def release_input(self, namespace: str, name: str) -> None:
        """Undo `label_for_watch` in one patch: no object references the Secret any more. Other
        finalizers and labels stay; a Secret already gone or already released is no error."""
        patch = {
            "metadata": {
                "labels": {WATCH_LABEL: None},
                "$deleteFromPrimitiveList/finalizers": [IN_USE_FINALIZER],
            }
        }
        await self._api.request(
            "PATCH", self._path(namespace, name), body=patch, content_type=STRATEGIC_MERGE_PATCH
        )

    async def write_token(
        self,
        namespace: str,
        name: str,
        owner: Owner,
        data: Mapping[str, str],
        current: SecretMeta | None,
        shape: SecretShape | None = None,
    ) -> bool:
        """Create or update the token Secret; returns whether anything was written. `current` is
        the Secret as last seen: a `SecretView` read from the API, whose content is compared, or
        the watch's metadata when the caller has compared the content already (and found it
        differs). The Secret is ours: its data becomes exactly `data` (keys of an earlier template
        go), its type that of `shape`, and it gets the labels and annotations of `shape`."""
        shape = shape or SecretShape()
        if current is not None:
            if not ours(current, owner):
                raise SecretConflict(
                    f"Secret {name!r} exists and is not managed by this ConnectorInstance; "
                    "delete or rename it, or set spec.tokenSecret.name to another name"
                )
            if isinstance(current, SecretView) and (
                current.owner_uid == owner.uid and dict(current.data) == dict(data) and shape.held_by(current)
            ):
                return False
            if current.type != shape.type:
                # A Secret's type cannot change: this one is ours, so it is replaced (this very one:
                # the precondition keeps a Secret made meanwhile by someone else).
                await self._api.request("DELETE", self._path(namespace, name), body=self._this(current))
                return await self.write_token(namespace, name, owner, data, None, shape)
            before = current.data if isinstance(current, SecretView) else current.keys
            patch = {
                "metadata": {
                    "labels": {**shape.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE, WATCH_LABEL: TOKEN_ROLE},
                    "annotations": dict(shape.annotations),
                    "ownerReferences": [owner.reference()],
                },
                # Exactly `data`: a merge patch keeps what it does not name, so gone keys are nulled.
                "data": {**dict.fromkeys(k for k in before if k not in data), **encode(data)},
            }
            await self._api.request(
                "PATCH", self._path(namespace, name), body=patch, content_type=MERGE_PATCH
            )
            return True
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": shape.type,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {**shape.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE, WATCH_LABEL: TOKEN_ROLE},
                "annotations": dict(shape.annotations),
                "ownerReferences": [owner.reference()],
            },
            "data": encode(data),
        }
        try:
            await self._api.request("POST", self._path(namespace), body=body)
        except KubeError as error:
            if error.status == 409:
                # It exists already (not in our cache): look at it, never overwrite blindly.
                existing = await self.read(namespace, name)
                return await self.write_token(namespace, name, owner, data, existing, shape)
            raise
        return True

    @staticmethod
    def _this(current: SecretMeta) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "preconditions": {"resourceVersion": current.resource_version},
        }

    async def delete_token(self, namespace: str, name: str, owner_uid: str) -> None:
        """Delete the token Secret if, and only if, this object owns it."""
        current = await self.read(namespace, name)
        if current is None or not current.managed or current.owner_uid != owner_uid:
            return
        await self._api.request("DELETE", self._path(namespace, name))

    async def watch_names(
        self, namespace: str | None, timeout: float, since: str | None = None
    ) -> AsyncIterator[tuple[str, tuple[str, str] | None]]:
        """Changes of the Secrets in `namespace` (None: every namespace the operator may watch)
        after resourceVersion `since` (None: from now), for up to `timeout` seconds, as
        (resourceVersion, (namespace, name)) for a created, changed or deleted Secret,
        (resourceVersion, None) for a bookmark; an event too large to read is skipped and reported
        by the name its first bytes give, or as UNREAD. A caller resumes from the last resourceVersion.

        Metadata only (a PartialObjectMetadata watch): the values never travel, and an event
        costs a few hundred bytes. The caller waits for a few names among all the Secrets of a
        namespace, so it filters, and it keeps nothing of the others. An expired resourceVersion
        ends the watch with KubeError 410: start again from now."""
        path = self._path(namespace) if namespace is not None else "/api/v1/secrets"
        if since is None:
            listed = await self._api.request("GET", path, params={"limit": "1"}) or {}
            since = str((listed.get("metadata") or {}).get("resourceVersion", ""))
        params = {
            "watch": "true",
            "resourceVersion": since,
            "timeoutSeconds": str(max(1, int(timeout))),
            "allowWatchBookmarks": "true",
        }
        yield since, None  # the caller resumes from here even if nothing happens
        async with self._api.stream_lines(path, params, accept=METADATA_ONLY) as lines:
            async for line in lines:
                if isinstance(line, Skipped):  # a label flood, say: only its own waiters look (N13)
                    yield since, line.named or UNREAD
                    continue
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise KubeError(int(obj.get("code") or 0), str(obj.get("reason") or "watch error"))
                meta = Meta.of(obj)
                version = meta.resource_version or since
                if kind == "BOOKMARK":
                    yield version, None
                elif kind in ("ADDED", "MODIFIED", "DELETED"):
                    yield version, (meta.namespace, meta.name)
