"""OAuth 2.0 connectors: a fake provider served by the simulator, and what the platform does with it.

The platform never shows its OAuth machinery (doc 4.8): it exchanges the code a person obtained at
the provider's consent page, keeps the refresh token, refreshes on its own and disables an instance
after five failed refreshes (doc 11). The simulator plays both sides, so that an operator can be
tested end to end: `GET /elements/{key}/oauth/url` answers the consent URL of this fake provider,
the provider's page (oauth_routes.py) redirects with a `code`, and `POST /instances` exchanges it.

Where the doc is silent, these are the simulator's choices (the most plausible reading):

- Codes are single-use and expire after `--oauth-code-ttl` seconds (120 by default; the control API
  changes it at run time). A code is bound to the element, the client id and the redirect URI it
  was issued for; the exchange checks all three, as an OAuth provider does. A code the provider
  never issued, an expired one, a reused one or a mismatched one makes the create (or the
  re-authentication) fail with 400, `message` "Unable to exchange the OAuth code for an access
  token" and the provider's words in `providerMessage` (doc 3: relayed provider errors carry it),
  e.g. `invalid_grant: authorization code expired`. The code is exchanged only once the rest of the
  request is valid, so a request rejected for another reason does not burn it.
- The fake provider has no app registry: any client id, and any non-empty client secret, is a
  registered app.
- `externalAuthentication: "initial"` adopts the refresh token given in the configuration: a token
  this provider revoked (or rotated away) is refused like a bad code; a token it never saw counts as
  issued outside the simulator and is accepted. The platform then rotates it (doc 14): the instance
  holds a new refresh token and the caller's copy is revoked, so it cannot create a second
  instance. `oauth.callback.url` is not required for this path (the vendor's own external create
  sends none).
- The instance keeps its grant in its configuration, as `oauth.user.refresh_token` and
  `oauth.user.token` (the access token), both PASSWORD-typed: like `oauth.api.key` and
  `oauth.api.secret` they are answered as `********` everywhere (doc 6.3), in the POST response
  too. The control API shows them in clear. `providerData` is never echoed (doc 6.1).
- When a refresh happens: at every read of the instance, i.e. `GET /instances/{id}`,
  `GET /elements/{key}/instances/{id}` and any GET authorized by its `Element` token (the
  platform refreshes on demand); the control API can also force one (`refresh_instance`). Lists
  do not refresh. So an operator's periodic `GET` sees `valid: false` on the first check after
  the provider revoked the refresh token, and `disabled: true` on the fifth (each failed read is
  one failed refresh; doc 4.8: five failed attempts disable). A disabled instance is not refreshed.
  A successful refresh issues a new access token and never sets `valid` (only a new grant repairs
  an instance, so `mark_invalid` keeps working on OAuth instances); the refresh token is kept.
- Re-authentication (`PUT`/`PATCH` with a new `providerData.code`, or a new
  `oauth.user.refresh_token` in the configuration, on `/instances/{id}` or the three-part
  `/instances`) keeps the instance ID and, unless a token-rotation fault is on, its token (doc 10
  suggests stability; rotation stays testable with `rotate_on_update`). It makes the instance
  valid and forgets the failed refreshes, but does not re-enable a disabled instance: the doc says
  it must be re-enabled *and* re-authenticated (S-autodisable). A configuration-only update of an
  OAuth instance does not make it valid (it carries no new grant).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from open_connectors_simulator.catalog import Element
from open_connectors_simulator.httputil import ApiError
from open_connectors_simulator.store import Instance

API_KEY = "oauth.api.key"
CALLBACK_URL = "oauth.callback.url"
SCOPE = "oauth.scope"
REFRESH_TOKEN = "oauth.user.refresh_token"
ACCESS_TOKEN = "oauth.user.token"
MAX_FAILED_REFRESHES = 5
DEFAULT_CODE_TTL_SECONDS = 120.0
EXCHANGE_FAILED_MESSAGE = "Unable to exchange the OAuth code for an access token"
REFRESH_TOKEN_REFUSED_MESSAGE = "Unable to obtain an access token with the given refresh token"


class ProviderError(Exception):
    """An OAuth error answer of the provider (RFC 6749 section 5.2)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True)
class _Code:
    element_key: str
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float


@dataclass
class _Grant:
    element_key: str
    client_id: str
    scope: str
    revoked: bool = False


class FakeProvider:
    """The provider behind every OAuth element: codes, refresh tokens and their revocation."""

    def __init__(
        self, code_ttl_seconds: float = DEFAULT_CODE_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._initial_ttl = code_ttl_seconds
        self.code_ttl_seconds = code_ttl_seconds
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, _Grant] = {}

    def reset(self) -> None:
        self.code_ttl_seconds = self._initial_ttl
        self._codes.clear()
        self._grants.clear()

    def issue_code(self, element_key: str, client_id: str, redirect_uri: str, scope: str) -> str:
        """After the person allowed access on the consent page."""
        now = self._clock()
        # Forget expired codes here, so that abandoned consents cannot accumulate.
        for stale in [code for code, entry in self._codes.items() if entry.expires_at <= now]:
            del self._codes[stale]
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(element_key, client_id, redirect_uri, scope, now + self.code_ttl_seconds)
        return code

    def exchange_code(self, code: str, *, element_key: str, client_id: str, redirect_uri: str) -> str:
        """The authorization-code grant; returns the refresh token. A code works once, even when
        the exchange fails for another reason (it is gone either way)."""
        entry = self._codes.pop(code, None)
        if entry is None:
            raise ProviderError("invalid_grant", "authorization code is invalid or was already used")
        if entry.expires_at <= self._clock():
            raise ProviderError("invalid_grant", "authorization code expired")
        if entry.element_key != element_key or entry.client_id != client_id:
            raise ProviderError("invalid_grant", "authorization code was issued to another client")
        if entry.redirect_uri != redirect_uri:
            raise ProviderError("invalid_grant", "redirect_uri mismatch")
        return self._new_grant(element_key, client_id, entry.scope)

    def adopt_refresh_token(self, token: str, *, element_key: str, client_id: str, scope: str) -> str:
        """Take over a refresh token obtained elsewhere: it is rotated, the given one revoked."""
        known = self._grants.get(token)
        if known is not None and (known.revoked or known.element_key != element_key):
            raise ProviderError("invalid_grant", "refresh token is invalid or revoked")
        if known is not None and known.client_id != client_id:
            raise ProviderError("invalid_grant", "refresh token was issued to another client")
        self._grants[token] = _Grant(element_key, client_id, scope, revoked=True)
        return self._new_grant(element_key, client_id, scope)

    def refresh(self, token: str) -> str:
        """The refresh-token grant; returns a new access token."""
        grant = self._grants.get(token)
        if grant is None or grant.revoked:
            raise ProviderError("invalid_grant", "refresh token is invalid or revoked")
        return secrets.token_urlsafe(32)

    def revoke(self, token: str) -> None:
        grant = self._grants.get(token)
        if grant is not None:
            grant.revoked = True

    def _new_grant(self, element_key: str, client_id: str, scope: str) -> str:
        token = secrets.token_urlsafe(32)
        self._grants[token] = _Grant(element_key, client_id, scope)
        return token


def exchange_failed(error: ProviderError, message: str = EXCHANGE_FAILED_MESSAGE) -> ApiError:
    return ApiError(400, message, provider_message=str(error))


def _code(provider_data: Mapping[str, Any] | None) -> str | None:
    code = (provider_data or {}).get("code")
    return code if isinstance(code, str) and code.strip() else None


def obtain_grant(
    provider: FakeProvider,
    element: Element,
    configuration: Mapping[str, str],
    *,
    provider_data: Mapping[str, Any] | None,
    refresh_token: str | None,
) -> dict[str, str]:
    """The configuration keys of a new grant, from a code or else from a refresh token; `{}` if
    neither is given. Raises the platform's 400 when the provider refuses."""
    client_id = configuration.get(API_KEY, "")
    code = _code(provider_data)
    if code is not None:
        message = EXCHANGE_FAILED_MESSAGE
    elif refresh_token:
        message = REFRESH_TOKEN_REFUSED_MESSAGE
    else:
        return {}
    try:
        if code is not None:
            redirect_uri = configuration.get(CALLBACK_URL, "")
            refresh = provider.exchange_code(
                code, element_key=element.key, client_id=client_id, redirect_uri=redirect_uri
            )
        else:
            scope = configuration.get(SCOPE, "")
            refresh = provider.adopt_refresh_token(
                str(refresh_token), element_key=element.key, client_id=client_id, scope=scope
            )
        access = provider.refresh(refresh)
    except ProviderError as exc:
        raise exchange_failed(exc, message) from None
    return {REFRESH_TOKEN: refresh, ACCESS_TOKEN: access}


def new_refresh_token(stored: Mapping[str, str], changes: Mapping[str, str | None]) -> str | None:
    """A refresh token an update sets, if it is a new one (not the mask, not the stored value)."""
    given = changes.get(REFRESH_TOKEN)
    if not given or given == stored.get(REFRESH_TOKEN) or set(given) == {"*"}:
        return None
    return given


def refresh_instance(provider: FakeProvider, instance: Instance) -> None:
    """One refresh attempt; a failure invalidates the instance and the fifth disables it."""
    if not instance.element.is_oauth or instance.disabled:
        return
    try:
        access = provider.refresh(instance.configuration.get(REFRESH_TOKEN, ""))
    except ProviderError:
        instance.failed_refreshes += 1
        instance.valid = False
        if instance.failed_refreshes >= MAX_FAILED_REFRESHES:
            instance.disabled = True
        return
    instance.configuration[ACCESS_TOKEN] = access


def revoke_instance_grant(provider: FakeProvider, instance: Instance) -> None:
    token = instance.configuration.get(REFRESH_TOKEN)
    if not instance.element.is_oauth or not token:
        raise ApiError(400, f"Instance {instance.id} holds no OAuth refresh token")
    provider.revoke(token)
