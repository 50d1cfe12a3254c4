"""Resolving a spec's Secret references into values, or saying precisely what is missing.

The caller fetches the Secrets (from the watch cache or the API); this module decides whether
they are usable. A missing Secret, a missing key and an empty value are all "waiting", never
terminal: the user is expected to create or fix the Secret, and the operator reacts when they do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.api.names import CREDENTIAL_KEYS
from connector_operator.api.spec import ConnectorInstanceSpec

SecretData = Mapping[str, str]


@dataclass(frozen=True)
class Resolved:
    user_secret: str = field(repr=False)
    organization_secret: str = field(repr=False)
    configuration: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Missing:
    """Why the inputs are not usable yet; the message names Secrets and keys, never values."""

    message: str
    secret_name: str


def _lookup(secrets: Mapping[str, SecretData | None], name: str, key: str, purpose: str) -> str | Missing:
    data = secrets.get(name)
    if data is None:
        return Missing(f"Secret {name!r} ({purpose}) does not exist", name)
    if key not in data:
        return Missing(f"Secret {name!r} has no key {key!r} ({purpose})", name)
    if not data[key].strip():
        return Missing(f"Secret {name!r} key {key!r} ({purpose}) is empty", name)
    return data[key]


def resolve(spec: ConnectorInstanceSpec, secrets: Mapping[str, SecretData | None]) -> Resolved | Missing:
    account = spec.credentials_secret_ref.name
    found: list[str] = []
    for key in CREDENTIAL_KEYS:
        value = _lookup(secrets, account, key, "account credentials")
        if isinstance(value, Missing):
            return value
        found.append(value.strip())
    configuration: dict[str, str] = {}
    for entry in spec.configuration or []:
        if entry.value_from is not None:
            ref = entry.value_from.secret_key_ref
            value = _lookup(secrets, ref.name, ref.key, f"configuration {entry.key!r}")
            if isinstance(value, Missing):
                return value
            # A trailing newline is what `echo key > file` leaves behind, never part of a key.
            configuration[entry.key] = value.rstrip("\r\n")
        else:
            configuration[entry.key] = entry.value or ""
    return Resolved(user_secret=found[0], organization_secret=found[1], configuration=configuration)
