"""Resolving a spec's Secret references into values, or saying precisely what is missing.

The caller fetches the Secrets (from the watch cache or the API); this module decides whether
they are usable. A missing Secret, a missing key, an empty value, a value that is not UTF-8
text and account secrets no HTTP header can carry are all "waiting", never terminal: the user
is expected to create or fix the Secret, and the operator reacts when they do.

A configuration too large to send is `TooLarge` (reported as `InvalidSpec`): the request is
bounded before it is built, so one Secret value referenced two hundred times costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.api.names import CREDENTIAL_KEYS
from connector_operator.api.spec import ConnectorInstanceSpec

# Decoded Secret data; None for a value that is not UTF-8 text (binary data is no configuration).
SecretData = Mapping[str, str | None]

# Configuration values are API keys, URLs, a PEM key at most: 64 KiB each and 512 KiB in all leave
# ample room, and keep a hostile spec from building a request of hundreds of megabytes.
MAX_VALUE_BYTES = 64 * 1024
MAX_CONFIGURATION_BYTES = 512 * 1024
# What an Authorization header can carry, and what real account secrets are made of.
_HEADER_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F))


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


@dataclass(frozen=True)
class TooLarge:
    """The configuration would make a request larger than the operator sends; names no value."""

    message: str


def lookup(secrets: Mapping[str, SecretData | None], name: str, key: str, purpose: str) -> str | Missing:
    data = secrets.get(name)
    if data is None:
        return Missing(f"Secret {name!r} ({purpose}) does not exist", name)
    if key not in data:
        return Missing(f"Secret {name!r} has no key {key!r} ({purpose})", name)
    value = data[key]
    if value is None:
        return Missing(f"Secret {name!r} key {key!r} ({purpose}) is not UTF-8 text", name)
    if not value.strip():
        return Missing(f"Secret {name!r} key {key!r} ({purpose}) is empty", name)
    return value


def account_secrets(secrets: Mapping[str, SecretData | None], name: str) -> tuple[str, str] | Missing:
    """The user and organization secrets from the Secret keyed `name`, or what is wrong with them."""
    found: list[str] = []
    for key in CREDENTIAL_KEYS:
        value = lookup(secrets, name, key, "account credentials")
        if isinstance(value, Missing):
            return value
        if not set(value.strip()) <= _HEADER_SAFE:
            return Missing(
                f"Secret {name!r} key {key!r} (account credentials) has characters an account "
                "secret cannot have (only printable ASCII without spaces)",
                name,
            )
        found.append(value.strip())
    return found[0], found[1]


def resolve(
    spec: ConnectorInstanceSpec, secrets: Mapping[str, SecretData | None], credentials_secret: str
) -> Resolved | Missing | TooLarge:
    """`credentials_secret` is the key of `secrets` under which the account secrets are: the
    spec's `credentialsSecretRef` or an account's Secret (a Secret of another namespace can be keyed
    `namespace/name`, which no Secret name of this namespace can be)."""
    found = account_secrets(secrets, credentials_secret)
    if isinstance(found, Missing):
        return found
    configuration: dict[str, str] = {}
    total = 0
    for entry in spec.configuration or []:
        if entry.value_from is not None:
            ref = entry.value_from.secret_key_ref
            value = lookup(secrets, ref.name, ref.key, f"configuration {entry.key!r}")
            if isinstance(value, Missing):
                return value
            # A trailing newline is what `echo key > file` leaves behind, never part of a key.
            value = value.rstrip("\r\n")
        else:
            value = entry.value or ""
        size = len(value.encode())
        total += size
        if size > MAX_VALUE_BYTES:
            return TooLarge(
                f"configuration {entry.key!r} is {size} bytes; a value may have at most {MAX_VALUE_BYTES}"
            )
        if total > MAX_CONFIGURATION_BYTES:
            return TooLarge(f"the configuration values add up to more than {MAX_CONFIGURATION_BYTES} bytes")
        configuration[entry.key] = value
    return Resolved(user_secret=found[0], organization_secret=found[1], configuration=configuration)
