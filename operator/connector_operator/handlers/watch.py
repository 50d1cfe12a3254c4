"""Watching Secrets: an in-memory cache of the labelled ones and wake-ups for their users.

The Secret watch carries a server-side label selector (set at startup), so only Secrets that
the operator labelled (inputs it reads, token Secrets it writes) ever reach this process. kopf
keeps two indexes for us: those Secrets by (namespace, name), and which ConnectorInstances
reference which Secret. A Secret event wakes exactly the daemons of its referencing objects, and
releases a held input Secret that no object references any more (handlers/secretholds.py).
The handlers are `async def` though they never await: kopf runs sync handlers in a thread
pool, and that hand-off cost more than the handlers themselves at 1,000 objects (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.api.spec import parse_spec, related_secrets
from connector_operator.handlers.runtime import Runtime
from connector_operator.kube.secrets import SecretView

SECRETS = ("v1", "secrets")


@kopf.index(*SECRETS)  # type: ignore[arg-type]
async def secret_cache(
    namespace: str, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], SecretView]:
    return {(namespace, name): SecretView.from_raw(body)}


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def secret_users(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> names of the ConnectorInstances that read or own it."""
    try:
        parsed = parse_spec(dict(spec))
    except ValidationError:
        return {}  # stalled until its spec changes: no Secret can wake it
    return {(namespace, secret): name for secret in related_secrets(parsed, name)}


@kopf.on.event(*SECRETS)  # type: ignore[arg-type]
async def secret_changed(
    namespace: str,
    name: str,
    type: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    secret_users: kopf.Index[tuple[str, str], str],
    **_: Any,
) -> None:
    runtime: Runtime = memo["runtime"]
    view = None if type == "DELETED" else SecretView.from_raw(body)
    runtime.holds.watched((namespace, name), view)
    if view is not None and not secret_users.get((namespace, name)):
        # Also at the start (the initial listing): references dropped while the operator was down.
        await runtime.holds.release_if_unused((namespace, name), secret_users, view)
    fingerprint = view.fingerprint if view is not None else None
    if not runtime.wakeups.secret_changed((namespace, name), fingerprint):
        return
    for user in secret_users.get((namespace, name), []):
        runtime.wakeups.wake((namespace, user))


class _IndexView(Mapping[tuple[str, str], SecretView]):
    """A plain Mapping over kopf's index, whose values are stores of one SecretView each."""

    def __init__(self, index: kopf.Index[tuple[str, str], SecretView]) -> None:
        self._index = index

    def __getitem__(self, key: tuple[str, str]) -> SecretView:
        return next(iter(self._index[key]))

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        store = self._index.get(key)
        return next(iter(store), default) if store is not None else default

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def secret_view_cache(index: kopf.Index[tuple[str, str], SecretView]) -> Mapping[tuple[str, str], SecretView]:
    return _IndexView(index)
