"""Shared helpers for the simulator contract tests: request bodies, error checks, Swagger validation."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

REQUEST_ID = re.compile(r"[0-9a-f]{24}")
TOKEN = re.compile(r"[A-Za-z0-9+/]{43}=")
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
MASK = "********"
UNAUTHORIZED = "Invalid Organization or User secret, or invalid Element token provided."
OAUTH_CODE_MESSAGE = "You must provide an OAuth code in order to create an instance of this element"

CLOSEIO_API_KEY = "close-api-key-0123456789"
CLOSEIO_PASSWORD = "close-password-secret"
_SWAGGER_URI = "urn:open-connectors:instances-swagger"


def closeio_body(name: str = "acme-closeio", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "element": {"key": "closeio"},
        "name": name,
        "configuration": {"username": CLOSEIO_API_KEY, "password": CLOSEIO_PASSWORD},
    }
    body.update(extra)
    return body


def create(client: httpx.Client, body: dict[str, Any], path: str = "/instances") -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    instance: dict[str, Any] = response.json()
    return instance


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """The platform error contract: status, `{requestId, message}`, matching request-id header."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"requestId", "message"}
    assert REQUEST_ID.fullmatch(body["requestId"])
    assert response.headers["Elements-Request-Id"] == body["requestId"]
    message: str = body["message"]
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


class SwaggerValidator:
    """Validates a payload against the response schema the Swagger declares for an operation."""

    def __init__(self, swagger: dict[str, Any]) -> None:
        self._swagger = swagger
        resource = Resource.from_contents(swagger, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(_SWAGGER_URI, resource)

    def validator(self, path: str, method: str) -> Draft4Validator:
        # Point at the operation's own 200 schema so the test follows the document, not a guess.
        operation = self._swagger["paths"][path][method.lower()]
        assert "schema" in operation["responses"]["200"], f"{method} {path} declares no body"
        pointer = "/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method.lower()}"
        schema = {"$ref": f"{_SWAGGER_URI}#{pointer}/responses/200/schema"}
        return Draft4Validator(schema, registry=self._registry)

    def check(self, path: str, method: str, payload: Any) -> None:
        errors = sorted(self.validator(path, method).iter_errors(payload), key=str)
        assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors]


# -- OAuth: the consent flow a person (or a headless browser) goes through ---------------------

OAUTH_CLIENT_ID = "consumer-key"
OAUTH_CLIENT_SECRET = "consumer-secret"
OAUTH_CALLBACK = "https://example.com/callback"


def oauth_configuration(
    client_id: str = OAUTH_CLIENT_ID, callback: str = OAUTH_CALLBACK, **extra: str
) -> dict[str, str]:
    return {
        "oauth.api.key": client_id,
        "oauth.api.secret": OAUTH_CLIENT_SECRET,
        "oauth.callback.url": callback,
        **extra,
    }


def consent_url(
    client: httpx.Client,
    element: str = "sfdc",
    *,
    client_id: str = OAUTH_CLIENT_ID,
    callback: str = OAUTH_CALLBACK,
    **extra: str,
) -> str:
    """`GET /elements/{key}/oauth/url`: the provider's consent URL."""
    params = {"apiKey": client_id, "apiSecret": OAUTH_CLIENT_SECRET, "callbackUrl": callback, **extra}
    response = client.get(f"/elements/{element}/oauth/url", params=params)
    assert response.status_code == 200, response.text
    url: str = response.json()["oauthUrl"]
    return url


class _ConsentForm(HTMLParser):
    """What a browser sees of the consent page: the form's action and its hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action = attributes.get("action", "")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button":
            self.buttons[attributes.get("id", "")] = attributes.get("value", "")


def consent(url: str, *, allow: bool = True) -> httpx.URL:
    """Open the consent page, click allow (or deny) and return where the provider redirects."""
    with httpx.Client(timeout=10.0) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        form = _ConsentForm()
        form.feed(page.text)
        button = "allow" if allow else "deny"
        data = {**form.fields, "decision": form.buttons[button]}
        answer = browser.post(page.url.join(form.action), data=data)
    assert answer.status_code == 302, answer.text
    return httpx.URL(answer.headers["location"])


def oauth_code(client: httpx.Client, element: str = "sfdc", **kwargs: str) -> str:
    """A fresh authorization code, from the whole consent flow with "allow"."""
    return consent(consent_url(client, element, **kwargs)).params["code"]


def oauth_body(
    client: httpx.Client, element: str = "sfdc", name: str = "sales", **extra: Any
) -> dict[str, Any]:
    """A create body for an OAuth element, with a code just obtained through the consent page."""
    body: dict[str, Any] = {
        "element": {"key": element},
        "name": name,
        "configuration": oauth_configuration(),
        "providerData": {"code": oauth_code(client, element)},
    }
    body.update(extra)
    return body
