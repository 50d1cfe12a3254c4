"""Watching Secrets: an in-memory index of the labelled ones and wake-ups for their users.

The Secret watch carries a server-side label selector (set at startup), so only Secrets that
carry the watch label (inputs the operator reads, token Secrets it writes, and whatever a tenant
labels herself) ever reach this process. kopf keeps two indexes for us: those Secrets by
(namespace, name), and which ConnectorInstances reference which Secret. A Secret event wakes
exactly its referencing objects (a pass each), and releases a held input Secret that no object
references any more (engine/secretholds.py).

The Secret index keeps metadata and a fingerprint of the content, never the values
(`kube.secrets.SecretMeta`): anyone who may create Secrets can label them for this watch, so
what the index costs must not depend on what is in them. The values of held input Secrets go to
the bounded cache of engine/secretreads.py; for a token Secret the index keeps digests of the
token (compared after a restart, and before a write). Once indexed, the values are dropped from
the body kopf holds too (`drop_values`): kopf keeps each event's body while the object's worker
idles, and at start-up every listed body until all are indexed.

The handlers are `async def` though they never await: kopf runs sync handlers in a thread
pool, and that hand-off cost more than the handlers themselves at 1,000 objects (bench/README.md).
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.api.spec import parse_spec, related_secrets
from connector_operator.engine.objects import cut_spec
from connector_operator.engine.secretindex import indexed, secret_meta
from connector_operator.kube.secrets import OUR_LABELS, SecretMeta
from connector_operator.reconciler.runtime import Runtime

SECRETS = ("v1", "secrets")


# The initial listing is fetched in pages of this many objects (kopf's `watching.chunk_size`, for
# every resource), so that a start-up holds a bounded number of big Secrets at once: kopf parses a
# whole page (several copies of it at once) before anything is indexed and dropped. With a tenant's
# 120 Secrets of 1 MB a restart peaked at 139 MiB with pages of 5, 161 MiB with 10, 237 MiB with 20
# (tests/integration/test_secret_memory.py); a page costs one LIST request.
LIST_CHUNK = 10


@kopf.index(*SECRETS)  # type: ignore[arg-type]
async def secret_cache(
    namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> dict[tuple[str, str], SecretMeta]:
    runtime: Runtime | None = memo.get("runtime")  # set at startup, before any watch starts
    meta = secret_meta(body, runtime.digest_key if runtime is not None else None)
    if runtime is not None:
        runtime.reads.watched(meta, body.get("data") or {})
    drop_values(body)
    return {(namespace, name): meta}


# Metadata nobody here reads, and the bulk of a stored object: the field managers' sets (rewritten
# by every status write) and kubectl's copy of the whole last applied object.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trim_instance(body: kopf.Body) -> None:
    """Drop from a ConnectorInstance body what neither kopf nor the operator reads: kopf's worker
    for the object keeps its latest body while it idles, and at start-up it holds every listed
    body until all are indexed (bench/README.md, "Memory per object"). A big spec's long strings
    go too (`cut_spec`): its passes read the object again."""
    cut_spec(body)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)


def drop_values(body: kopf.Body) -> None:
    """Empty what kopf holds of a Secret beyond what it and we use: the data, the annotations, the
    managed fields and the labels that are not ours. kopf's Body is a view of the event's parsed
    JSON, so this frees them at once, though the worker keeps the event a few seconds more."""
    data = body.get("data")
    if isinstance(data, dict):
        data.clear()
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta.pop("annotations", None)
        meta.pop("managedFields", None)
        labels = meta.get("labels")
        if isinstance(labels, dict):
            for label in [label for label in labels if label not in OUR_LABELS]:
                del labels[label]


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def secret_users(
    namespace: str, name: str, spec: kopf.Spec, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> names of the ConnectorInstances that read or own it. The first
    handler of every ConnectorInstance event, so it also trims what kopf keeps (`trim_instance`)."""
    trim_instance(body)
    try:
        parsed = parse_spec(dict(spec))
    except ValidationError:
        return {}  # stalled until its spec changes: no Secret can wake it
    return {(namespace, secret): name for secret in related_secrets(parsed, name)}


@kopf.on.event(*SECRETS)  # type: ignore[arg-type]
async def secret_changed(
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_users: kopf.Index[tuple[str, str], str],
    secret_cache: kopf.Index[tuple[str, str], SecretMeta],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    namespace = body.metadata.namespace or ""
    key = (namespace, body.metadata.name or "")
    if type == "DELETED":  # not indexed: its values are dropped here
        drop_values(body)
        runtime.reads.forget(key)
    view = None if type == "DELETED" else indexed(secret_cache, key, body)
    runtime.holds.watched(key, view)
    if view is not None and not secret_users.get(key):
        # Also at the start (the initial listing): references dropped while the operator was down.
        await runtime.holds.release_if_unused(key, secret_users, view)
    fingerprint = view.fingerprint if view is not None else None
    if not runtime.wakeups.secret_changed(key, fingerprint):
        return
    for user in secret_users.get(key, []):
        runtime.wakeups.wake((namespace, user))
