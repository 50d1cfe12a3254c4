"""The platform's error contract and request-body hygiene, shared by every route.

The real service answers every failure with `{"requestId": "<24 hex>", "message": "..."}`; keeping
the error type and body reading here means no handler can invent another shape or let a bad body
turn into a 500.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

REQUEST_ID_KEY = "simulator.request_id"
REQUEST_ID_HEADER = "Elements-Request-Id"
NEXT_PAGE_HEADER = "Elements-Next-Page-Token"

MAX_BODY_BYTES_KEY = web.AppKey("simulator.max_body_bytes", int)
# Set by `receive_body` when the body was over the limit: the route answers 413 when it reads it.
BODY_TOO_LARGE_KEY = "simulator.body_too_large"

_INSTANCE_ID = re.compile(r"\d{1,18}")


class ApiError(Exception):
    """A failure the client must see as `status` with the platform error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        # The provider's own words, relayed as `providerMessage` (doc 3), e.g. a refused OAuth code.
        self.provider_message = provider_message


def new_request_id() -> str:
    """A 24-hex id shaped like the MongoDB ObjectIds the platform returns (time prefix + random)."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{os.urandom(8).hex()}"


def request_id(request: web.Request) -> str:
    existing = request.get(REQUEST_ID_KEY)
    if isinstance(existing, str):
        return existing
    generated = new_request_id()
    request[REQUEST_ID_KEY] = generated
    return generated


def error_response(
    request: web.Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    provider_message: str | None = None,
) -> web.Response:
    body = {"requestId": request_id(request), "message": message}
    if provider_message is not None:
        body["providerMessage"] = provider_message
    return web.json_response(body, status=status, headers=dict(headers or {}))


def json_ok(payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    # Success is always 200 on this platform, never 201/204 (doc section 3).
    return web.json_response(payload, status=200, headers=dict(headers or {}))


def empty_ok() -> web.Response:
    # DELETE and the enable/disable calls answer 200 with no body at all.
    return web.Response(status=200)


def _is_json_media_type(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def receive_body(request: web.Request) -> None:
    """Receive the whole request body now (aiohttp keeps it for the route's later `read()`).

    A platform has the request once its caller has sent it, whatever happens to the caller after
    that: reading it before any injected latency is what lets a call whose client went away
    during the latency still take effect. An oversized body is not buffered; the route that reads
    it answers 413, after the latency and faults, as before."""
    declared = request.content_length
    if declared is not None and declared > request.app[MAX_BODY_BYTES_KEY]:
        request[BODY_TOO_LARGE_KEY] = True
        return
    try:
        await request.read()
    except web.HTTPRequestEntityTooLarge:
        request[BODY_TOO_LARGE_KEY] = True


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Read a JSON object body or raise the 4xx a careful server would answer with.

    Order matters: size first (never buffer an oversized body), then media type, then syntax.
    """
    max_size = request.app[MAX_BODY_BYTES_KEY]
    declared = request.content_length
    if request.get(BODY_TOO_LARGE_KEY) or (declared is not None and declared > max_size):
        raise ApiError(413, f"Request body exceeds the limit of {max_size} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, f"Request body exceeds the limit of {max_size} bytes") from exc
    if not raw.strip():
        raise ApiError(400, "A JSON request body is required")
    if not _is_json_media_type(request.content_type):
        raise ApiError(415, f"Unsupported media type '{request.content_type}'; use application/json")
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, "Malformed JSON in request body") from exc
    if not isinstance(parsed, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return parsed


def parse_instance_id(raw: str) -> int:
    """Path ids must be integers; anything else is a client error, not a lookup miss."""
    if not _INSTANCE_ID.fullmatch(raw):
        raise ApiError(400, f"Invalid instance id '{raw[:40]}': expected an integer")
    return int(raw)


def instance_not_found(instance_id: int) -> ApiError:
    # Wording follows the platform's "No <thing> found with ID <id>" pattern (doc 7.1).
    return ApiError(404, f"No instance found with ID {instance_id}")
