"""The aiohttp application: wiring of routes plus the cross-cutting behaviour of every call.

Two middlewares own what no route should have to remember: the outer one guarantees the platform
error body, the `Elements-Request-Id` header and one log line per request (and that nothing ever
becomes an unexplained 500); the inner one applies call counting, latency, injected faults and the
account check to API routes only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from open_connectors_simulator.auth import check_account, parse_authorization
from open_connectors_simulator.control_api import add_control_routes
from open_connectors_simulator.elements import add_element_routes
from open_connectors_simulator.faults import FaultKind, LoggedRequest
from open_connectors_simulator.httputil import (
    BODY_TOO_LARGE_KEY,
    MAX_BODY_BYTES_KEY,
    REQUEST_ID_HEADER,
    ApiError,
    error_response,
    receive_body,
    request_id,
)
from open_connectors_simulator.instances import CREDENTIALS_KEY, add_instance_routes, state_of
from open_connectors_simulator.oauth_routes import add_oauth_routes
from open_connectors_simulator.service import STATE_KEY, SimulatorState
from open_connectors_simulator.settings import API_BASE_PATH, CONTROL_BASE_PATH, SimulatorSettings

log = logging.getLogger("open_connectors_simulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _DropConnection(Exception):
    """Raised to make the outer middleware close the socket without answering."""


def _api_route(request: web.Request) -> str | None:
    """The route template relative to the base path, e.g. `/instances/{id}`; None if not an API route."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or request.match_info.http_exception is not None:
        return None
    canonical = resource.canonical
    if not canonical.startswith(API_BASE_PATH + "/"):
        return None
    return canonical[len(API_BASE_PATH) :]


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    # aiohttp's own 404/405/413 are plain text; rewrite them into the platform error body.
    if exc.status == 404:
        message = f"No route matches {request.method} {request.path}"
    elif exc.status == 405:
        message = f"Method {request.method} is not allowed on {request.path}"
    else:
        message = exc.reason or "Request failed"
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return error_response(request, exc.status, message, headers)


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    rid = request_id(request)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(request, exc.status, exc.message, exc.headers, exc.provider_message)
    except web.HTTPException as exc:
        response = _from_http_exception(request, exc)
    except _DropConnection:
        if request.transport is not None:
            request.transport.close()
        log.info("%s %s -> connection dropped (injected)", request.method, request.path)
        # Nothing reaches the client: aiohttp cannot write to the closed transport.
        return web.Response(status=200)
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        response = error_response(request, 500, "Internal simulator error")
    response.headers[REQUEST_ID_HEADER] = rid
    # Method and path only: secrets and tokens travel in headers and bodies, never in paths.
    log.info(
        "%s %s -> %d (%.1f ms)",
        request.method,
        request.path,
        response.status,
        (time.perf_counter() - started) * 1e3,
    )
    return response


HANG_SECONDS = 600.0


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = _api_route(request)
    if route is None:
        return await handler(request)
    state = state_of(request)
    logged = state.counters.record(request.method, route, request.path)
    # The request is the platform's once it is received: read the body before the latency, and
    # finish the work even if the client goes away meanwhile (a caller killed after sending a
    # POST leaves an instance behind on a real platform too). The shield keeps a cancellation of
    # this handler (a client disconnect, if the server cancels handlers) from reaching the work.
    await receive_body(request)
    work = asyncio.ensure_future(_api_call(request, handler, state, route, logged))
    _IN_FLIGHT.add(work)
    work.add_done_callback(_forget)
    response, hang = await asyncio.shield(work)
    if hang:
        await asyncio.sleep(HANG_SECONDS)
    return response


# Shielded calls still running (the event loop keeps only weak references to tasks).
_IN_FLIGHT: set[asyncio.Future[tuple[web.StreamResponse, bool]]] = set()


def _forget(work: asyncio.Future[tuple[web.StreamResponse, bool]]) -> None:
    _IN_FLIGHT.discard(work)
    if not work.cancelled():
        work.exception()  # retrieved: a call whose client left may end in an error nobody reads


async def _api_call(
    request: web.Request, handler: Handler, state: SimulatorState, route: str, logged: LoggedRequest
) -> tuple[web.StreamResponse, bool]:
    """The call, its answer's status logged; also whether the answer is to be held back (hang)."""
    try:
        response, hang = await _api_work(request, handler, state, route)
    except (ApiError, web.HTTPException) as exc:
        logged.status = exc.status
        raise
    logged.status = response.status
    return response, hang


async def _api_work(
    request: web.Request, handler: Handler, state: SimulatorState, route: str
) -> tuple[web.StreamResponse, bool]:
    """Latency, injected faults, the account check and the route's handler, for one API call."""
    faults = state.faults
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    # A rule may match on the body (`contains`): the one `receive_body` kept, none if too large.
    body = b"" if request.get(BODY_TOO_LARGE_KEY) else await request.read()
    action = faults.decide(request.method, route, body)
    if action is not None:
        if action.kind is FaultKind.DROP_BEFORE:
            raise _DropConnection
        if action.kind in (FaultKind.FAIL, FaultKind.RATE_LIMIT):
            raise action.error()
    drop_after = action is not None and action.kind is FaultKind.DROP_AFTER

    try:
        credentials = parse_authorization(request.headers.get("Authorization"))
        check_account(
            credentials,
            organization_secret=state.settings.organization_secret,
            user_secret=state.settings.user_secret,
        )
        request[CREDENTIALS_KEY] = credentials
        response = await handler(request)
    except (ApiError, web.HTTPException):
        if drop_after:
            raise _DropConnection from None
        raise
    if drop_after:
        # The call took effect (e.g. the instance exists) but the client never learns of it.
        raise _DropConnection
    return response, action is not None and action.kind is FaultKind.HANG_AFTER


def create_app(settings: SimulatorSettings) -> web.Application:
    app = web.Application(
        middlewares=[envelope_middleware, api_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[STATE_KEY] = SimulatorState.from_settings(settings)
    app[MAX_BODY_BYTES_KEY] = settings.max_body_bytes
    add_element_routes(app.router, API_BASE_PATH)
    add_instance_routes(app.router, API_BASE_PATH)
    add_oauth_routes(app.router, API_BASE_PATH)
    add_control_routes(app.router, CONTROL_BASE_PATH)
    return app
