"""OAuth grants and the consent URL, below the pass: what the Secrets give (domain/grants.py), the
body a grant goes into, the consent answer the operator accepts (openconnectors/consent.py), and
a code never coming back in an error (the request's redaction covers `providerData`).

The flows over the real API server and the simulator are tests/reconciler/test_oauth.py's."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from connector_operator.api.oauth import OAuth
from connector_operator.domain.desired import Keyed
from connector_operator.domain.grants import (
    MAX_CODE,
    Code,
    Denied,
    RefreshToken,
    Unusable,
    consent_state,
    grant_digest,
    resolve_oauth,
    state_matches,
    with_grant,
)
from connector_operator.domain.inputs import Missing
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.answers import Answer
from connector_operator.openconnectors.client import Consent, Credentials, InstancesClient
from connector_operator.openconnectors.redaction import Redactor

KEYED = Keyed(b"k" * 32, "uid-1")
APP = {"clientId": "app-id", "clientSecret": "app-secret-0123456789"}
CODE_SPEC = {
    "appCredentialsSecretRef": {"name": "app"},
    "callbackURL": "http://127.0.0.1:8765/cb",
    "scopes": ["a", "b"],
    "authorizationSecretRef": {"name": "auth"},
}
REFRESH_SPEC = {
    **{k: v for k, v in CODE_SPEC.items() if k != "authorizationSecretRef"},
    "refreshTokenSecretRef": {"name": "rt"},
}


def oauth(raw: dict[str, Any]) -> OAuth:
    return OAuth.model_validate(raw)


def test_exactly_one_grant_source() -> None:
    with pytest.raises(ValueError, match="exactly one of authorizationSecretRef"):
        oauth({**CODE_SPEC, "refreshTokenSecretRef": {"name": "rt"}})
    with pytest.raises(ValueError, match="exactly one of authorizationSecretRef"):
        oauth({k: v for k, v in CODE_SPEC.items() if k != "authorizationSecretRef"})


def test_the_app_is_required_and_goes_into_the_configuration() -> None:
    missing = resolve_oauth(oauth(CODE_SPEC), {})
    assert isinstance(missing, Missing)
    assert missing.secret_name == "app"
    inputs = resolve_oauth(oauth(CODE_SPEC), {"app": APP})
    assert not isinstance(inputs, Missing)
    assert inputs.grant is None
    assert not inputs.secret_exists
    assert inputs.app.configuration() == {
        "oauth.api.key": "app-id",
        "oauth.api.secret": "app-secret-0123456789",
        "oauth.callback.url": "http://127.0.0.1:8765/cb",
        "oauth.scope": "a b",
    }
    assert "app-secret" not in repr(inputs)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, None),
        ({"other": "x"}, None),
        ({"code": "c-1\n", "state": "s"}, Code("c-1", "s")),
        ({"error": "access_denied", "state": "s"}, Denied("access_denied", "s")),
        ({"error": "<script>", "state": "s"}, Denied("unreadable", "s")),
        ({"code": "x" * (MAX_CODE + 1), "state": "s"}, Unusable("its 'code' is longer than 4096 characters")),
        ({"code": None, "state": "s"}, Unusable("not UTF-8 text")),
        ({"code": "c", "state": "s" * 129}, Unusable("its 'state' is longer than 128 characters")),
    ],
)
def test_what_an_authorization_secret_gives(data: dict[str, str | None], expected: object) -> None:
    inputs = resolve_oauth(oauth(CODE_SPEC), {"app": APP, "auth": data})
    assert not isinstance(inputs, Missing)
    assert inputs.grant == expected
    assert inputs.secret_exists


def test_a_refresh_token_secret_gives_a_refresh_token() -> None:
    inputs = resolve_oauth(oauth(REFRESH_SPEC), {"app": APP, "rt": {"refreshToken": " rt-1 "}})
    assert not isinstance(inputs, Missing)
    assert inputs.grant == RefreshToken("rt-1")
    assert not inputs.from_code
    assert inputs.read == {}  # nothing of it is ever removed


def test_a_grant_goes_into_the_body_once_and_its_digest_holds_no_value() -> None:
    body = {"name": "n", "configuration": {"oauth.api.key": "app-id"}}
    assert with_grant(body, Code("c-1", "s"), creating=True)["providerData"] == {"code": "c-1"}
    created = with_grant(body, RefreshToken("rt-1"), creating=True)
    assert created["externalAuthentication"] == "initial"
    assert created["configuration"] == {"oauth.api.key": "app-id", "oauth.user.refresh_token": "rt-1"}
    assert "externalAuthentication" not in with_grant(body, RefreshToken("rt-1"), creating=False)
    assert body == {"name": "n", "configuration": {"oauth.api.key": "app-id"}}  # not changed
    digest = grant_digest(Code("c-1", "s"), KEYED)
    assert "c-1" not in digest
    assert digest != grant_digest(Code("c-2", "s"), KEYED)
    assert digest != grant_digest(Code("c-1", "s"), Keyed(b"k" * 32, "uid-2"))


def test_the_state_is_per_object_stable_and_new_after_each_grant() -> None:
    state = consent_state(KEYED, None)
    assert state == consent_state(Keyed(b"k" * 32, "uid-1"), None)
    assert state != consent_state(Keyed(b"k" * 32, "uid-2"), None)
    assert state != consent_state(Keyed(b"j" * 32, "uid-1"), None)
    assert state != consent_state(KEYED, grant_digest(Code("c-1", state), KEYED))
    assert len(state) == 32
    assert state.isalnum()


@pytest.mark.parametrize(
    ("given", "matches"),
    [
        ("S", True),
        ("S.abc-DEF_123", True),  # kubectl openconnectors authorize's session
        ("T", False),
        ("T.abc", False),
        ("S.", False),
        ("S.a.b", False),
        ("S.a b", False),
        ("S." + "a" * 65, False),
        ("", False),
    ],
)
def test_a_code_comes_back_with_the_operators_state_or_a_session_of_it(given: str, matches: bool) -> None:
    assert state_matches(given, "S") is matches


CONSENT = Consent("hubspot", "app-id", "app-secret-0123456789", "http://127.0.0.1:8765/cb", "a b", "st4te")
USER, ORGANIZATION = "user-secret-7d1f0a93", "org-secret-44c1b2e8"


def answer(body: object, status: int = 200) -> Answer:
    """An answer to the consent call, with the redactor of its request (the client secret in the
    query, the account secrets in the header)."""
    redactor = Redactor((CONSENT.client_secret, USER, ORGANIZATION))
    return Answer(status, httpx.Headers(), "OK", bytearray(json.dumps(body).encode()), redactor)


def b64(text: str, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://provider.test/authorize?state=other", "does not carry the state"),
        ("https://provider.test/authorize", "does not carry the state"),
        ("https://provider.test/a?state=st4te&s=app-secret-0123456789", "secret the request carried"),
        ("https://provider.test/a?state=st4te&s=app%2Dsecret%2D0123456789", "secret the request carried"),
        (
            f"https://provider.test/a?state=st4te&s={b64('app-secret-0123456789')}",
            "secret the request carried",
        ),
        (f"https://provider.test/a?state=st4te&o={ORGANIZATION}", "secret the request carried"),
        (f"https://provider.test/a?state=st4te&u={b64(USER, urlsafe=True)}", "secret the request carried"),
        ("https://provider.test/a?state=st4te&redirect_uri=https%3A%2F%2Fevil.test%2Fcb", "elsewhere"),
        ("javascript:alert(1)//?state=st4te", "not an http\\(s\\) URL"),
        ("https://user@provider.test/a?state=st4te", "not an http\\(s\\) URL"),
        ("https://provider.test/a b?state=st4te", "whitespace"),
        ("https://provider.test/a\x1b[31m?state=st4te", "control characters"),
        ("https://provider.test/?state=st4te&x=" + "a" * 5000, "longer than 4096"),
    ],
)
def test_a_consent_url_is_refused_when(url: str, problem: str) -> None:
    with pytest.raises(errors.MalformedResponse, match=problem):
        CONSENT.url_of(answer({"oauthUrl": url}))


def test_a_consent_url_is_kept_as_given() -> None:
    url = "https://provider.test/authorize?client_id=app-id&state=st4te&scope=a+b"
    assert CONSENT.url_of(answer({"oauthUrl": url})) == url
    with pytest.raises(errors.MalformedResponse, match="no oauthUrl"):
        CONSENT.url_of(answer({"url": url}))
    assert CONSENT.query()["apiSecret"] == "app-secret-0123456789"
    assert "app-secret" not in repr(CONSENT)


async def test_a_code_never_comes_back_in_an_error() -> None:
    """A platform that echoes the request (in its message) sees the code masked, as any secret sent."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"bad request: {request.content.decode()}"})

    client = InstancesClient(transport=httpx.MockTransport(echo))
    body = {
        "name": "n",
        "configuration": {"oauth.api.key": "app-id"},
        "providerData": {"code": "one-time-code-42"},
    }
    with pytest.raises(errors.BadRequest) as raised:
        await client.create("https://platform.test/elements/api-v2", Credentials("u" * 8, "o" * 8), body)
    await client.aclose()
    assert "one-time-code-42" not in str(raised.value)
    assert "bad request" in str(raised.value)
