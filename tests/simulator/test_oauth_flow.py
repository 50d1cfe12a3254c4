"""OAuth connectors, first half: the `oauth/url` helper, the fake provider's consent page, and
creating an instance from a code or from a refresh token (choices in open_connectors_simulator/oauth.py)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle, SimulatorProcess
from tests.simulator.support import (
    MASK,
    OAUTH_CALLBACK,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    OAUTH_CODE_MESSAGE,
    assert_error,
    consent,
    consent_url,
    create,
    oauth_body,
    oauth_code,
    oauth_configuration,
)

EXCHANGE_FAILED = "Unable to exchange the OAuth code for an access token"


@pytest.mark.parametrize("key", ["sfdc", "hubspot"])
def test_oauth_elements_in_the_catalog(simulator_client: httpx.Client, key: str) -> None:
    element = simulator_client.get(f"/elements/{key}").json()
    assert element["authentication"] == {"type": "oauth2"}
    assert element["typeOauth"] is True
    required = {entry["key"] for entry in element["configuration"] if entry["required"]}
    assert required == {"oauth.api.key", "oauth.api.secret", "oauth.callback.url"}
    closeio = simulator_client.get("/elements/closeio").json()
    assert (closeio["authenticationType"], closeio["typeOauth"]) == ("basic", False)


def test_oauth_url_points_at_the_simulated_provider(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    params = {
        "apiKey": OAUTH_CLIENT_ID,
        "apiSecret": OAUTH_CLIENT_SECRET,
        "callbackUrl": "http://127.0.0.1:8765/callback",
        "scope": "contacts oauth",
        "state": "s-123",
        "siteAddress": "https://acme.example.com",
    }
    response = simulator_client.get("/elements/hubspot/oauth/url", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["element"] == "hubspot"
    url = httpx.URL(response.json()["oauthUrl"])
    assert str(url).startswith(f"{simulator.base_url}/oauth-provider/hubspot/authorize?")
    assert dict(url.params) == {
        "response_type": "code",
        "client_id": OAUTH_CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "scope": "contacts oauth",
        "state": "s-123",
        "site": "https://acme.example.com",
    }
    assert OAUTH_CLIENT_SECRET not in str(url)
    # By element id, and the POST form the vendor's suite uses; no state: the element key.
    element_id = simulator_client.get("/elements/sfdc").json()["id"]
    posted = simulator_client.post(
        f"/elements/{element_id}/oauth/url",
        json={"apiKey": "k", "apiSecret": "s", "callbackUrl": OAUTH_CALLBACK},
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["element"] == "sfdc"
    assert httpx.URL(posted.json()["oauthUrl"]).params["state"] == "sfdc"
    assert simulator.control.counters()["GET /elements/{keyOrId}/oauth/url"] == 1


def test_oauth_url_refusals(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    url = "/elements/sfdc/oauth/url"
    assert_error(simulator_client.get(url), 400, "apiKey", "apiSecret", "callbackUrl")
    assert_error(
        simulator_client.get(url, params={"apiKey": "k", "callbackUrl": OAUTH_CALLBACK}), 400, "apiSecret"
    )
    bad = {"apiKey": "k", "apiSecret": "s", "callbackUrl": "not a url"}
    assert_error(simulator_client.get(url, params=bad), 400, "callbackUrl")
    good = {"apiKey": "k", "apiSecret": "s", "callbackUrl": OAUTH_CALLBACK}
    assert_error(simulator_client.get("/elements/closeio/oauth/url", params=good), 400, "closeio")
    assert_error(simulator_client.get("/elements/nope/oauth/url", params=good), 404, "nope")
    with httpx.Client(base_url=simulator.api_url) as anonymous:
        assert_error(anonymous.get(url, params=good), 401)


def test_consent_allow_redirects_with_code_and_state(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    url = consent_url(simulator_client, callback="https://example.com/cb?keep=1", state="xyz")
    page = httpx.get(url)
    assert page.status_code == 200
    assert 'id="allow"' in page.text
    assert 'id="deny"' in page.text
    assert page.headers["cache-control"] == "no-store"
    redirect = consent(url)
    assert (redirect.scheme, redirect.host, redirect.path) == ("https", "example.com", "/cb")
    assert set(redirect.params) == {"keep", "code", "state"}
    assert redirect.params["state"] == "xyz"
    assert redirect.params["keep"] == "1"
    assert len(redirect.params["code"]) >= 20
    # The provider's pages are not API calls: not counted, no credentials needed.
    assert all("oauth-provider" not in route for route in simulator.control.counters())


def test_consent_deny_redirects_with_access_denied(simulator_client: httpx.Client) -> None:
    redirect = consent(consent_url(simulator_client, state="s1"), allow=False)
    assert redirect.params["error"] == "access_denied"
    assert redirect.params["state"] == "s1"
    assert "code" not in redirect.params


def test_consent_page_refuses_an_untrustworthy_request_without_redirecting(
    simulator: SimulatorHandle,
) -> None:
    authorize = f"{simulator.base_url}/oauth-provider/sfdc/authorize"
    bad = {"response_type": "code", "client_id": "k", "redirect_uri": "javascript:alert(1)"}
    for params in (bad, {**bad, "redirect_uri": OAUTH_CALLBACK, "response_type": "token"}):
        page = httpx.get(authorize, params=params)
        assert page.status_code == 400
        assert "location" not in page.headers
        posted = httpx.post(authorize, data={**params, "decision": "allow"})
        assert posted.status_code == 400
        assert "location" not in posted.headers
    good = {"response_type": "code", "client_id": "k", "redirect_uri": OAUTH_CALLBACK}
    assert httpx.post(authorize, data={**good, "decision": "maybe"}).status_code == 400
    assert httpx.get(f"{simulator.base_url}/oauth-provider/closeio/authorize", params=good).status_code == 404


@pytest.mark.parametrize("key", ["sfdc", "hubspot"])
def test_create_from_a_code(simulator: SimulatorHandle, simulator_client: httpx.Client, key: str) -> None:
    body = oauth_body(simulator_client, key)
    instance = create(simulator_client, body)
    assert "providerData" not in instance
    assert instance["valid"] is True
    assert instance["externalAuthentication"] == "none"
    configuration = instance["configuration"]
    for secret in ("oauth.api.key", "oauth.api.secret", "oauth.user.refresh_token", "oauth.user.token"):
        assert configuration[secret] == MASK, secret
    assert configuration["oauth.callback.url"] == OAUTH_CALLBACK
    fetched = simulator_client.get(f"/instances/{instance['id']}").json()
    assert "providerData" not in fetched
    assert OAUTH_CLIENT_SECRET not in str(fetched)
    raw = simulator.control.instance(instance["id"])
    assert raw["configuration"]["oauth.api.secret"] == OAUTH_CLIENT_SECRET
    assert raw["configuration"]["oauth.user.refresh_token"] not in ("", MASK)


def test_without_a_code_the_documented_400(simulator_client: httpx.Client) -> None:
    body = {"element": {"key": "hubspot"}, "name": "h", "configuration": oauth_configuration()}
    response = simulator_client.post("/instances", json=body)
    assert assert_error(response, 400) == OAUTH_CODE_MESSAGE


def test_a_code_is_single_use(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    body = oauth_body(simulator_client)
    create(simulator_client, body)
    reused = simulator_client.post("/instances", json=body)
    assert_error(reused, 400, EXCHANGE_FAILED)
    assert "invalid_grant" in reused.json()["providerMessage"]
    assert len(simulator.control.instances()) == 1


def test_an_expired_code_is_refused(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    simulator.control.set_oauth_code_ttl(0.3)
    body = oauth_body(simulator_client)
    time.sleep(0.5)
    response = simulator_client.post("/instances", json=body)
    assert_error(response, 400, EXCHANGE_FAILED)
    assert "expired" in response.json()["providerMessage"]
    simulator.control.reset()  # back to the start-up lifetime (120 s)
    create(simulator_client, oauth_body(simulator_client))


def test_a_code_binds_element_client_and_callback(simulator_client: httpx.Client) -> None:
    made_up = {**oauth_body(simulator_client), "providerData": {"code": "made-up"}}
    assert_error(simulator_client.post("/instances", json=made_up), 400, EXCHANGE_FAILED)
    cases = [
        {"providerData": {"code": oauth_code(simulator_client, "hubspot")}},
        {"configuration": oauth_configuration(client_id="another-app")},
        {"configuration": oauth_configuration(callback="https://example.com/elsewhere")},
    ]
    for change in cases:
        body = {**oauth_body(simulator_client), **change}
        response = simulator_client.post("/instances", json=body)
        assert_error(response, 400, EXCHANGE_FAILED)
        assert "invalid_grant" in response.json()["providerMessage"]


def test_a_request_refused_for_another_reason_does_not_burn_the_code(simulator_client: httpx.Client) -> None:
    body = oauth_body(simulator_client)
    assert_error(simulator_client.post("/instances", json={**body, "name": ""}), 400, "name")
    create(simulator_client, body)


def test_create_from_a_refresh_token_rotates_it(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    configuration = oauth_configuration(**{"oauth.user.refresh_token": "users-refresh-token"})
    del configuration["oauth.callback.url"]  # no redirect on this path
    body = {
        "element": {"key": "sfdc"},
        "name": "external",
        "configuration": configuration,
        "externalAuthentication": "initial",
    }
    instance = create(simulator_client, body)
    assert instance["externalAuthentication"] == "initial"
    assert instance["configuration"]["oauth.user.refresh_token"] == MASK
    assert instance["valid"] is True
    stored = simulator.control.instance(instance["id"])["configuration"]["oauth.user.refresh_token"]
    assert stored != "users-refresh-token"
    # The platform rotated it: the caller's copy cannot make a second instance.
    response = simulator_client.post("/instances", json=body)
    assert_error(response, 400, "refresh token")
    assert "invalid_grant" in response.json()["providerMessage"]


def test_oauth_secrets_never_reach_the_log(
    simulator: SimulatorHandle, simulator_client: httpx.Client, simulator_process: SimulatorProcess
) -> None:
    url = consent_url(simulator_client, state="state-in-the-url")
    redirect = consent(url)
    code = redirect.params["code"]
    body = {**oauth_body(simulator_client), "providerData": {"code": code}}
    instance = create(simulator_client, body)
    refresh_token = simulator.control.instance(instance["id"])["configuration"]["oauth.user.refresh_token"]
    simulator_client.get("/elements/sfdc")  # its log line is written before the answer: all are on disk
    log = simulator_process.log_path.read_text()
    assert "GET /oauth-provider/sfdc/authorize" in log
    for secret in (code, refresh_token, OAUTH_CLIENT_SECRET, "state-in-the-url"):
        assert secret not in log
