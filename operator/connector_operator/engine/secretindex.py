"""kopf's index of Secrets as the passes read it: metadata and fingerprints, never values.

`secret_meta` is what the index keeps of a Secret (handlers/secrets.py registers the index);
`secret_view_cache` turns kopf's index, whose values are stores of one `SecretMeta` each, into a
plain Mapping; `indexed` finds what the index made of one watch event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from connector_operator.api.meta import Meta
from connector_operator.domain.desired import Keyed, legacy_token_digest, token_digest
from connector_operator.engine.wakeups import Key
from connector_operator.kube.secrets import SecretMeta

# kopf's Secret index: (namespace, name) -> a store of one SecretMeta.
Index = Mapping[Key, Iterable[SecretMeta]]


def secret_meta(raw: Mapping[str, Any], digest_key: bytes | None) -> SecretMeta:
    """What the index keeps of a Secret; with the operator's digest key, a token Secret's token
    digest is the one status.tokenDigest holds (without it only the legacy one can be compared)."""

    def digests(token: str, owner_uid: str) -> tuple[str | None, str]:
        keyed = token_digest(token, Keyed(digest_key, owner_uid)) if digest_key is not None else None
        return keyed, legacy_token_digest(token, owner_uid)

    return SecretMeta.from_raw(raw, digests)


def indexed(index: Index, key: tuple[str, str], body: Mapping[str, Any]) -> SecretMeta:
    """What the index made of this very event (the index handler ran first, and dropped the
    values from `body`); made from `body` only if indexing failed (and so left the values)."""
    version = Meta.of(body).resource_version
    store = index.get(key)
    found = next((m for m in store if m.resource_version == version), None) if store is not None else None
    return found if found is not None else secret_meta(body, None)


class _IndexView(Mapping[tuple[str, str], SecretMeta]):
    """A plain Mapping over kopf's index, whose values are stores of one SecretMeta each."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def __getitem__(self, key: tuple[str, str]) -> SecretMeta:
        return next(iter(self._index[key]))

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        store = self._index.get(key)
        return next(iter(store), default) if store is not None else default

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def secret_view_cache(index: Index) -> Mapping[tuple[str, str], SecretMeta]:
    return _IndexView(index)
