"""OAuth 2.0 connectors: `spec.oauth`, the Secrets it names and the keys read from them.

An OAuth connector's instance is made from a grant a person gave at the provider's consent page
(a one-time authorization `code`) or from a refresh token obtained elsewhere. The app's client
credentials come from a Secret and go into the instance's configuration (`oauth.api.key`,
`oauth.api.secret`, `oauth.callback.url`, `oauth.scope`); the grant goes only into the one create
or re-authentication that uses it. `kubectl openconnectors authorize` fills the authorization
Secret; the operator removes a code once it used or refused it (reconciler/grants.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from connector_operator.api.configuration import HTTP_URL, LocalObjectReference
from connector_operator.api.fields import NOT_SPACE, Model, cel

__all__ = [
    "CLIENT_ID_KEY",
    "CLIENT_SECRET_KEY",
    "CODE_KEY",
    "ERROR_KEY",
    "GRANT_EXCLUSIVE",
    "OAUTH_CONFIGURATION_KEYS",
    "REFRESH_TOKEN_KEY",
    "STATE_KEY",
    "OAuth",
    "grant_secret",
]

# Keys of the app credentials Secret.
CLIENT_ID_KEY = "clientId"
CLIENT_SECRET_KEY = "clientSecret"
# Keys of the authorization Secret, as `kubectl openconnectors authorize` writes them: the code and
# the state of the provider's redirect, or the provider's error (a denied consent) and the state.
CODE_KEY = "code"
STATE_KEY = "state"
ERROR_KEY = "error"
# Key of the refresh token Secret.
REFRESH_TOKEN_KEY = "refreshToken"

# The platform's configuration keys of an OAuth app; set by the operator, never in spec.configuration.
OAUTH_CONFIGURATION_KEYS = (
    "oauth.api.key",
    "oauth.api.secret",
    "oauth.callback.url",
    "oauth.scope",
    "oauth.user.refresh_token",
    "oauth.user.token",
)
GRANT_EXCLUSIVE = (
    "exactly one of authorizationSecretRef and refreshTokenSecretRef must be set: the one source of the grant"
)


class OAuth(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.authorizationSecretRef) != has(self.refreshTokenSecretRef)",
                    GRANT_EXCLUSIVE,
                ),
            ]
        }
    )

    app_credentials_secret_ref: Annotated[
        LocalObjectReference,
        Field(
            alias="appCredentialsSecretRef",
            description="Secret in this namespace with the OAuth app registered at the provider: keys "
            f"`{CLIENT_ID_KEY}` and `{CLIENT_SECRET_KEY}`, sent as the configuration's `oauth.api.key` "
            "and `oauth.api.secret`.",
        ),
    ]
    callback_url: Annotated[
        str,
        Field(
            alias="callbackURL",
            description="The redirect URI registered with the app, sent as `oauth.callback.url`. The "
            "provider sends the person's browser there with the code: a loopback URL such as "
            "`http://127.0.0.1:8765/callback` for `kubectl openconnectors authorize --listen`, or an "
            "OAuth proxy's page whose URL is pasted with `--paste`.",
            max_length=2048,
            pattern=HTTP_URL,
        ),
    ]
    scopes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200, pattern=f"^{NOT_SPACE}+$")]] | None,
        Field(
            description="Scopes to ask the provider for, sent space-separated as `oauth.scope`. The "
            "connector's default scopes apply when unset.",
            max_length=50,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None
    authorization_secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            alias="authorizationSecretRef",
            description="Secret in this namespace that `kubectl openconnectors authorize` writes the "
            f"provider's one-time `{CODE_KEY}` and `{STATE_KEY}` into (created if missing). The "
            "operator creates the instance with the code (or re-authenticates it in place), then "
            "removes the code from the Secret; a code the provider refused or whose state is not the "
            "one the operator issued is removed too. Excludes refreshTokenSecretRef.",
        ),
    ] = None
    refresh_token_secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            alias="refreshTokenSecretRef",
            description=f"Secret in this namespace with a refresh token (key `{REFRESH_TOKEN_KEY}`) "
            "obtained elsewhere: the instance is created from it (`externalAuthentication: initial`), "
            "and the platform rotates it, so the copy here is spent once used. A new value "
            "re-authenticates the instance in place. Excludes authorizationSecretRef.",
        ),
    ] = None

    @model_validator(mode="after")
    def _one_grant_source(self) -> OAuth:
        # Mirrors the CEL rule of the same message, for specs built in code.
        if (self.authorization_secret_ref is None) == (self.refresh_token_secret_ref is None):
            raise ValueError(GRANT_EXCLUSIVE)
        return self


def grant_secret(oauth: OAuth) -> str:
    """The Secret the grant comes from: the authorization Secret or the refresh token's."""
    ref = oauth.authorization_secret_ref or oauth.refresh_token_secret_ref
    assert ref is not None  # the model (and the CRD) require exactly one
    return ref.name
