"""One request as the client makes it (`Request`), what it carries that must never come back
(`sent_values`), and the account gate's admission of it (`admitted`)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from connector_operator.openconnectors.budget import AccountGate, Admission
from connector_operator.openconnectors.credentials import Credentials
from connector_operator.openconnectors.redaction import Redactor


@dataclass(frozen=True)
class Request:
    """One request as a call makes it; where it waits (the account's gate, the namespace's slots)
    is the call's."""

    method: str
    api_url: str
    path: str
    credentials: Credentials
    body: Mapping[str, Any] | None = field(default=None, repr=False)
    params: Mapping[str, str | int] | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)  # values the body carries

    @property
    def url(self) -> str:
        return self.api_url.rstrip("/") + self.path

    def redactor(self) -> Redactor:
        """Hides every secret the request carries from whatever comes back."""
        return Redactor((*self.secrets, self.credentials.user_secret, self.credentials.organization_secret))


def sent_values(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The values a body carries: its configuration's and an OAuth grant's (`providerData`)."""
    values: list[str] = []
    for part in ("configuration", "providerData"):
        found = body.get(part) or {}
        values.extend(str(v) for v in found.values()) if isinstance(found, Mapping) else None
    return tuple(values)


def admitted(
    gate: AccountGate | None, max_wait: float, namespace: str | None, tenant_input: bool
) -> AbstractAsyncContextManager[Admission]:
    """The gate's admission, or a stand-in that judges nothing for a call without an account."""
    if gate is None:
        return contextlib.nullcontext(Admission(None))
    return gate.admit(max_wait, namespace=namespace, tenant_input=tenant_input)


def granted(body: Mapping[str, Any]) -> bool:
    """Whether a body carries an OAuth grant: a code, or a refresh token in its configuration."""
    configuration = body.get("configuration")
    refresh = isinstance(configuration, Mapping) and "oauth.user.refresh_token" in configuration
    return "providerData" in body or refresh
