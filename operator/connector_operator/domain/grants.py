"""OAuth grants: what an OAuth object's Secrets give, and how a grant goes into a request.

An OAuth instance is made, or re-authenticated in place, with one grant: a one-time authorization
code a person obtained at the provider's consent page (with the `state` of the consent URL the
operator issued), or a refresh token obtained elsewhere. A grant is used once: its keyed digest
goes into `status.authorization.grantDigest`, and the same grant is never sent again (a code is
spent by its first exchange, and the platform rotates a refresh token it is given). The app's
client credentials are configuration like any other and go into every create and update.

Everything read here is bounded: a value past its limit is no grant (`Unusable`), reported and
discarded like a refused one, never sent.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.oauth import (
    CLIENT_ID_KEY,
    CLIENT_SECRET_KEY,
    CODE_KEY,
    ERROR_KEY,
    REFRESH_TOKEN_KEY,
    STATE_KEY,
    OAuth,
    grant_secret,
)
from connector_operator.domain.desired import DIGEST_PREFIX, Keyed
from connector_operator.domain.inputs import Missing, SecretData, lookup

MAX_CODE = 4096
MAX_REFRESH_TOKEN = 8192
MAX_STATE = 128
MAX_APP_VALUE = 4096
_CODE_KEYS = (CODE_KEY, STATE_KEY, ERROR_KEY)
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

API_KEY, API_SECRET, CALLBACK_URL, SCOPE = (
    "oauth.api.key",
    "oauth.api.secret",
    "oauth.callback.url",
    "oauth.scope",
)
REFRESH_TOKEN = "oauth.user.refresh_token"


@dataclass(frozen=True)
class App:
    """The OAuth app registered at the provider, and what the instance asks it for."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    callback_url: str
    scope: str | None

    def configuration(self) -> dict[str, str]:
        values = {API_KEY: self.client_id, API_SECRET: self.client_secret, CALLBACK_URL: self.callback_url}
        return {**values, SCOPE: self.scope} if self.scope else values


@dataclass(frozen=True)
class Code:
    code: str = field(repr=False)
    state: str


@dataclass(frozen=True)
class RefreshToken:
    token: str = field(repr=False)


@dataclass(frozen=True)
class Denied:
    """The person denied consent (or the provider failed): its error code, as the redirect said."""

    error: str
    state: str


@dataclass(frozen=True)
class Unusable:
    """A value in the grant's Secret that cannot be a grant; says why without the value."""

    why: str


Grant = Code | RefreshToken | Denied | Unusable


@dataclass(frozen=True)
class OAuthInputs:
    app: App
    grant: Grant | None  # None: the Secret holds no grant (yet)
    secret: str  # the grant's Secret
    secret_exists: bool
    from_code: bool  # authorizationSecretRef (a person authorizes), not refreshTokenSecretRef
    # The authorization Secret's code, state and error as read (exact, unstripped): what is
    # removed from it once spent, and only if still there.
    read: Mapping[str, str] = field(default_factory=dict, repr=False)


def resolve_oauth(oauth: OAuth, secrets: Mapping[str, SecretData | None]) -> OAuthInputs | Missing:
    """The app (required: missing is a wait for its Secret) and the grant, if any."""
    values: list[str] = []
    for key in (CLIENT_ID_KEY, CLIENT_SECRET_KEY):
        ref = oauth.app_credentials_secret_ref.name
        value = lookup(secrets, ref, key, "OAuth app credentials")
        if isinstance(value, Missing):
            return value
        if len(value) > MAX_APP_VALUE:
            return Missing(f"Secret {ref!r} key {key!r} is longer than {MAX_APP_VALUE} characters", ref)
        values.append(value.strip())
    app = App(values[0], values[1], oauth.callback_url, " ".join(oauth.scopes) if oauth.scopes else None)
    name = grant_secret(oauth)
    data = secrets.get(name)
    from_code = oauth.authorization_secret_ref is not None
    grant = None if data is None else (_code(data) if from_code else _refresh_token(data))
    read = {k: v for k, v in (data or {}).items() if from_code and k in _CODE_KEYS and v is not None}
    return OAuthInputs(app, grant, name, data is not None, from_code, read)


def _code(data: SecretData) -> Grant | None:
    code, state, error = data.get(CODE_KEY), data.get(STATE_KEY), data.get(ERROR_KEY)
    if code is None and error is None:
        return None if CODE_KEY not in data and ERROR_KEY not in data else Unusable("not UTF-8 text")
    state = (state or "").strip()
    if len(state) > MAX_STATE:
        return Unusable(f"its {STATE_KEY!r} is longer than {MAX_STATE} characters")
    if error is not None and error.strip():
        error = error.strip()
        return Denied(error if _ERROR_CODE.fullmatch(error) else "unreadable", state)
    code = (code or "").strip()
    if not code:
        return None
    if len(code) > MAX_CODE:
        return Unusable(f"its {CODE_KEY!r} is longer than {MAX_CODE} characters")
    return Code(code, state)


def _refresh_token(data: SecretData) -> Grant | None:
    if REFRESH_TOKEN_KEY not in data:
        return None
    token = data[REFRESH_TOKEN_KEY]
    if token is None:
        return Unusable("not UTF-8 text")
    token = token.strip()
    if len(token) > MAX_REFRESH_TOKEN:
        return Unusable(f"its {REFRESH_TOKEN_KEY!r} is longer than {MAX_REFRESH_TOKEN} characters")
    return RefreshToken(token) if token else None


def consent_state(keyed: Keyed, after: str | None) -> str:
    """The `state` of this object's consent URLs until the next grant is used (`after`: the digest
    of the last one): unguessable without the operator's key, the same across restarts, a new one
    once a grant is used (an old consent page's code is refused), and checked when a code comes
    back. `kubectl openconnectors authorize` appends a session of its own (`state_matches`), so
    that a reader of the object, who sees the state in status, cannot slip a code from her own
    consent into a person's loopback listener."""
    return keyed("oauth-state", after or "").removeprefix(DIGEST_PREFIX)


def state_matches(state: str, expected: str) -> bool:
    """`expected`, or `expected.<session>` as `authorize` sends it."""
    head, dot, session = state.partition(".")
    if dot and _SESSION.fullmatch(session) is None:
        return False
    return hmac.compare_digest(head.encode(), expected.encode())


def grant_digest(grant: Grant, keyed: Keyed) -> str:
    match grant:
        case Code():
            return keyed("grant", "code", grant.code)
        case RefreshToken():
            return keyed("grant", "refresh-token", grant.token)
        case Denied():
            return keyed("grant", "denied", grant.error, grant.state)
        case Unusable():
            return keyed("grant", "unusable", grant.why)


def with_grant(body: Mapping[str, Any], grant: Code | RefreshToken, *, creating: bool) -> dict[str, Any]:
    """`body` (a create's or an update's) carrying the grant: a code as `providerData`, a refresh
    token in the configuration (with `externalAuthentication: initial` on a create)."""
    sent = dict(body)
    if isinstance(grant, Code):
        sent["providerData"] = {"code": grant.code}
        return sent
    sent["configuration"] = {**sent.get("configuration", {}), REFRESH_TOKEN: grant.token}
    if creating:
        sent["externalAuthentication"] = "initial"
    return sent
