"""HTTP routes of the instance API (doc sections 4.1 and 4.3) on top of the service layer.

Each route here only translates between the wire (path, query, Authorization `Element` token,
status codes, pagination headers) and `SimulatorState`; the rules themselves live in `service`.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter

from aiohttp import web

from open_connectors_simulator.auth import Credentials, unauthorized
from open_connectors_simulator.httputil import (
    NEXT_PAGE_HEADER,
    ApiError,
    empty_ok,
    json_ok,
    parse_instance_id,
    read_json_object,
)
from open_connectors_simulator.service import STATE_KEY, SimulatorState
from open_connectors_simulator.store import Instance

CREDENTIALS_KEY = "simulator.credentials"

MAX_PAGE_SIZE = 200
_CURSOR_PREFIX = "after:"


def state_of(request: web.Request) -> SimulatorState:
    return request.app[STATE_KEY]


def token_instance(request: web.Request) -> Instance:
    """The instance named by the `Element` token of a three-part Authorization header (the pairs in
    any order: auth.py). A GET with it reads the instance, so an OAuth one is refreshed (oauth.py)."""
    credentials = request.get(CREDENTIALS_KEY)
    token = credentials.element if isinstance(credentials, Credentials) else None
    state = state_of(request)
    instance = state.store.by_token(token) if token else None
    if instance is None:
        # A deleted instance's token gets the same 401 as a made-up one (doc 2.3).
        raise unauthorized()
    if request.method == "GET":
        state.refresh(instance)
    return instance


def _path_instance(request: web.Request) -> Instance:
    instance_id = parse_instance_id(request.match_info["id"])
    return state_of(request).instance(instance_id, request.match_info.get("keyOrId"))


# -- cursor pagination ------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode("ascii")


def decode_cursor(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ApiError(400, "Invalid nextPage token") from exc
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise ApiError(400, "Invalid nextPage token")
    return int(text[len(_CURSOR_PREFIX) :])


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(
            400, f"Invalid pageSize '{raw[:20]}': must be an integer between 1 and {MAX_PAGE_SIZE}"
        )
    return size


async def _list(request: web.Request, element_key: str | None) -> web.Response:
    query = request.query
    limit = _page_size(query.get("pageSize"))
    next_page = query.get("nextPage")
    after_id = decode_cursor(next_page) if next_page else None
    # Clients send `tags[]=a&tags[]=b`; plain `tags=` is accepted too because encoders differ.
    tags = [tag.strip() for tag in [*query.getall("tags[]", []), *query.getall("tags", [])] if tag.strip()]
    search_text = query.get("searchText") or None
    state = state_of(request)
    page, has_more = state.store.search(
        tags=tags, search_text=search_text, element_key=element_key, after_id=after_id, limit=limit
    )
    if not page and state.settings.empty_list_404:
        raise ApiError(404, "No instances found")
    headers = {NEXT_PAGE_HEADER: encode_cursor(page[-1].id)} if has_more and page else {}
    return json_ok([instance.api_json() for instance in page], headers)


# -- handlers ---------------------------------------------------------------------------------


async def create_instance(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    instance = state_of(request).create_instance(body, request.match_info.get("keyOrId"))
    return json_ok(instance.api_json())


async def list_instances(request: web.Request) -> web.Response:
    return await _list(request, None)


async def list_element_instances(request: web.Request) -> web.Response:
    element = state_of(request).element(request.match_info["keyOrId"])
    return await _list(request, element.key)


async def count_instances(request: web.Request) -> web.Response:
    """`GET /instances/count`: `{totalInstances, elementInstances}` (doc 14, from the vendor's tests).

    Only the two field names are known. `elementInstances` is read here as the breakdown of the
    total by element, one `{elementId, elementKey, count}` per element in use, by key; every
    instance belongs to the one simulated user, so the count is the whole account's."""
    per_element = Counter(instance.element for instance in state_of(request).store.all())
    breakdown = [
        {"elementId": element.id, "elementKey": element.key, "count": count}
        for element, count in sorted(per_element.items(), key=lambda item: item[0].key)
    ]
    return json_ok({"totalInstances": sum(per_element.values()), "elementInstances": breakdown})


async def get_instance(request: web.Request) -> web.Response:
    instance = _path_instance(request)
    state_of(request).refresh(instance)  # a read refreshes an OAuth instance's token (oauth.py)
    return json_ok(instance.api_json())


async def update_instance(request: web.Request) -> web.Response:
    instance = _path_instance(request)
    body = await read_json_object(request)
    return json_ok(state_of(request).update_instance(instance, body).api_json())


async def delete_instance(request: web.Request) -> web.Response:
    state_of(request).store.delete(_path_instance(request))
    return empty_ok()


async def enable_instance(request: web.Request) -> web.Response:
    state_of(request).set_disabled(_path_instance(request), False)
    return empty_ok()


async def disable_instance(request: web.Request) -> web.Response:
    state_of(request).set_disabled(_path_instance(request), True)
    return empty_ok()


# Three-part forms: the instance is the one whose token is in the Authorization header.


async def update_token_instance(request: web.Request) -> web.Response:
    instance = token_instance(request)
    body = await read_json_object(request)
    return json_ok(state_of(request).update_instance(instance, body).api_json())


async def delete_token_instance(request: web.Request) -> web.Response:
    state_of(request).store.delete(token_instance(request))
    return empty_ok()


async def enable_token_instance(request: web.Request) -> web.Response:
    state_of(request).set_disabled(token_instance(request), False)
    return empty_ok()


async def disable_token_instance(request: web.Request) -> web.Response:
    state_of(request).set_disabled(token_instance(request), True)
    return empty_ok()


def add_instance_routes(router: web.UrlDispatcher, base: str) -> None:
    # Static paths before `{id}` so that `/instances/enabled` or `/count` never parses as an id.
    router.add_put(f"{base}/instances/enabled", enable_token_instance)
    router.add_delete(f"{base}/instances/enabled", disable_token_instance)
    router.add_get(f"{base}/instances/count", count_instances, allow_head=False)
    router.add_post(f"{base}/instances", create_instance)
    router.add_get(f"{base}/instances", list_instances, allow_head=False)
    router.add_put(f"{base}/instances", update_token_instance)
    router.add_patch(f"{base}/instances", update_token_instance)
    router.add_delete(f"{base}/instances", delete_token_instance)
    for prefix in (f"{base}/instances", f"{base}/elements/{{keyOrId}}/instances"):
        router.add_get(f"{prefix}/{{id}}", get_instance, allow_head=False)
        router.add_put(f"{prefix}/{{id}}", update_instance)
        router.add_patch(f"{prefix}/{{id}}", update_instance)
        router.add_delete(f"{prefix}/{{id}}", delete_instance)
    router.add_put(f"{base}/instances/{{id}}/enabled", enable_instance)
    router.add_delete(f"{base}/instances/{{id}}/enabled", disable_instance)
    router.add_post(f"{base}/elements/{{keyOrId}}/instances", create_instance)
    router.add_get(f"{base}/elements/{{keyOrId}}/instances", list_element_instances, allow_head=False)
