"""kopf handlers for ConnectorInstance: its watch events and its deletion.

The passes themselves are reconciler/instance.py's, run by our scheduler; kopf provides the
watching, the indexes, the finalizer, the Events and retries of the delete handler. This module
turns what the reconciler says into kopf's terms: Events (`post_events`, the sink of the passes
and deletions), and `TemporaryError` for a deletion that must run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import kopf

from connector_operator import logcontext
from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.domain.outcome import bounded
from connector_operator.engine.deleteretry import DELETE_HANDLER
from connector_operator.engine.liveobjects import LiveObjects
from connector_operator.engine.objects import Event, Ref
from connector_operator.engine.secretindex import secret_view_cache
from connector_operator.reconciler import deletion, instance
from connector_operator.reconciler.runtime import Runtime

RESOURCE = (GROUP, VERSION, PLURAL)


@kopf.on.event(*RESOURCE)  # type: ignore[arg-type]
async def instance_changed(
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_users: kopf.Index[tuple[str, str], str],
    secret_cache: kopf.Index[tuple[str, str], Any],
    instance_refs: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    if runtime.secret_index is None:  # kopf's index objects live as long as the operator
        runtime.secret_index = secret_view_cache(secret_cache)
        runtime.live = LiveObjects(instance_refs)
    key = (body.metadata.namespace or "", body.metadata.name or "")
    await instance.changed(runtime, key, type, body, secret_users, runtime.secret_index)


def post_events(ref: Ref, events: Sequence[Event]) -> None:
    """The Events sink of the passes and deletions (reconciler/assemble.py): kopf posts them."""
    body = kopf.Body(cast(kopf.RawBody, ref))
    for type_, reason, message in events:
        if type_ == "Warning":
            kopf.warn(body, reason=reason, message=bounded(message))
        else:
            kopf.info(body, reason=reason, message=bounded(message))


@kopf.on.delete(*RESOURCE, id=DELETE_HANDLER)  # type: ignore[arg-type]
async def delete_instance(
    namespace: str,
    name: str,
    uid: str,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_cache: kopf.Index[tuple[str, str], Any],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    logcontext.bind(namespace, name, uid)
    verdict = await deletion.delete(runtime, body, secret_view_cache(secret_cache))  # Events posted
    match verdict:
        case deletion.Wait(what, delay):
            raise kopf.TemporaryError(what, delay=delay)
        case deletion.Retry(outcome, delay):
            # kopf retries the delete handler on TemporaryError; terminal outcomes retry slowly.
            raise kopf.TemporaryError(outcome.message, delay=delay)
