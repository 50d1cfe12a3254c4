"""Shared helpers for the simulator contract tests: request bodies, error checks, Swagger validation."""

from __future__ import annotations

import re
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
