"""HTTP side of OAuth: the platform's `oauth/url` helper and the fake provider's consent page.

`GET /elements/{keyOrId}/oauth/url` (query `apiKey`, `apiSecret`, `callbackUrl`, optional `scope`,
`state`, `siteAddress`; the vendor's suite also POSTs the same fields as JSON) answers
`{"element": key, "oauthUrl": url}` (the shape the vendor's tests read). The URL points at this
simulator's own provider, `/oauth-provider/{key}/authorize?response_type=code&client_id=...
&redirect_uri=...&scope=...&state=...`, on the host the client used. Choices where the doc is silent:
`apiKey`, `apiSecret` and `callbackUrl` are required (400 naming the missing ones); `callbackUrl`
must be an http(s) URL (a loopback one included); without `state` the URL carries the element key
as state; `siteAddress` is passed on as `site` and shown on the page, with no other effect; the
secret never appears in the URL; a non-OAuth element is a 400.

The provider's page is plain HTML with one form and two buttons, `id="allow"` and `id="deny"`
(a headless browser clicks them). Allowing redirects (302) to `redirect_uri` with `code` and
`state` added to its query; denying, with `error=access_denied` and `state`. A request the
provider cannot trust (no client id, not `response_type=code`, a redirect URI that is not an
http(s) URL) is answered with an HTML 400 and never redirected (RFC 6749 4.1.2.1). These pages
live outside the API base path: no credentials, no faults, not in the call counters, and (like
every request) logged by method and path only, so no code or state reaches the log.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from yarl import URL

from open_connectors_simulator.catalog import Element
from open_connectors_simulator.httputil import ApiError, json_ok, read_json_object
from open_connectors_simulator.instances import state_of

OAUTH_PROVIDER_PATH = "/oauth-provider"
_REQUIRED = ("apiKey", "apiSecret", "callbackUrl")
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def is_http_url(value: str) -> bool:
    try:
        url = URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host) and not any(c.isspace() for c in value)


async def _parameters(request: web.Request) -> dict[str, str]:
    if request.method == "GET":
        return {key: request.query[key] for key in request.query}
    body = await read_json_object(request)
    return {str(key): str(value) for key, value in body.items() if value is not None}


def _oauth_element(request: web.Request) -> Element:
    element = state_of(request).element(request.match_info["keyOrId"])
    if not element.is_oauth:
        raise ApiError(400, f"Element {element.key} does not authenticate with OAuth")
    return element


async def oauth_url(request: web.Request) -> web.Response:
    element = _oauth_element(request)
    params = await _parameters(request)
    missing = [name for name in _REQUIRED if not params.get(name, "").strip()]
    if missing:
        raise ApiError(400, f"Missing required parameter(s): {', '.join(missing)}")
    if not is_http_url(params["callbackUrl"]):
        raise ApiError(400, "Invalid callbackUrl: expected an http(s) URL")
    query = {
        "response_type": "code",
        "client_id": params["apiKey"],
        "redirect_uri": params["callbackUrl"],
    }
    if params.get("scope"):
        query["scope"] = params["scope"]
    query["state"] = params.get("state") or element.key
    if params.get("siteAddress"):
        query["site"] = params["siteAddress"]
    authorize = request.url.origin().with_path(f"{OAUTH_PROVIDER_PATH}/{element.key}/authorize")
    return json_ok({"element": element.key, "oauthUrl": str(authorize.with_query(query))})


# -- the fake provider --------------------------------------------------------------------------


def _page(status: int, title: str, body: str) -> web.Response:
    text = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n"
        "</body></html>\n"
    )
    return web.Response(status=status, text=text, content_type="text/html", headers=_NO_STORE)


def _problem(params: Mapping[str, str]) -> str | None:
    """Why the provider will not deal with this request, or None."""
    if params.get("response_type") != "code":
        return "unsupported response_type: only the authorization code grant is offered"
    if not params.get("client_id", "").strip():
        return "missing client_id"
    if not is_http_url(params.get("redirect_uri", "")):
        return "redirect_uri is missing or not an http(s) URL"
    return None


def _provider_element(request: web.Request) -> Element | None:
    element = state_of(request).catalog.get(request.match_info["key"])
    return element if element is not None and element.is_oauth else None


def _hidden(params: Mapping[str, str]) -> str:
    names = ("response_type", "client_id", "redirect_uri", "scope", "state", "site")
    return "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in names
        if name in params
    )


async def consent_page(request: web.Request) -> web.Response:
    element = _provider_element(request)
    if element is None:
        return _page(404, "Unknown provider", "<p>No OAuth provider here.</p>")
    params = {key: request.query[key] for key in request.query}
    problem = _problem(params)
    if problem is not None:
        return _page(400, "Invalid authorization request", f"<p>{html.escape(problem)}</p>")
    details: list[tuple[str, Any]] = [("Application", params["client_id"])]
    details += [("Scope", params["scope"])] if params.get("scope") else []
    details += [("Site", params["site"])] if params.get("site") else []
    listing = "".join(f"<li>{label}: <code>{html.escape(str(value))}</code></li>" for label, value in details)
    form = (
        f"<p>An application asks for access to your {html.escape(element.name)} account.</p>\n"
        f"<ul>{listing}</ul>\n"
        f'<form id="consent" method="post" action="{html.escape(request.path)}">\n{_hidden(params)}\n'
        '<button type="submit" id="allow" name="decision" value="allow">Allow</button>\n'
        '<button type="submit" id="deny" name="decision" value="deny">Deny</button>\n</form>'
    )
    return _page(200, f"{element.name} (simulated): authorize access", form)


async def consent_decision(request: web.Request) -> web.Response:
    element = _provider_element(request)
    if element is None:
        return _page(404, "Unknown provider", "<p>No OAuth provider here.</p>")
    form = await request.post()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    problem = _problem(params)
    decision = params.get("decision")
    if problem is None and decision not in ("allow", "deny"):
        problem = "decision must be allow or deny"
    if problem is not None:
        return _page(400, "Invalid authorization request", f"<p>{html.escape(problem)}</p>")
    if decision == "allow":
        provider = state_of(request).oauth
        answer = {
            "code": provider.issue_code(
                element.key, params["client_id"], params["redirect_uri"], params.get("scope", "")
            )
        }
    else:
        answer = {"error": "access_denied", "error_description": "The user denied access"}
    if params.get("state"):
        answer["state"] = params["state"]
    location = URL(params["redirect_uri"]).update_query(answer)
    return web.Response(status=302, headers={"Location": str(location), **_NO_STORE})


def add_oauth_routes(router: web.UrlDispatcher, api_base: str) -> None:
    router.add_get(f"{api_base}/elements/{{keyOrId}}/oauth/url", oauth_url, allow_head=False)
    router.add_post(f"{api_base}/elements/{{keyOrId}}/oauth/url", oauth_url)
    router.add_get(f"{OAUTH_PROVIDER_PATH}/{{key}}/authorize", consent_page, allow_head=False)
    router.add_post(f"{OAUTH_PROVIDER_PATH}/{{key}}/authorize", consent_decision)
