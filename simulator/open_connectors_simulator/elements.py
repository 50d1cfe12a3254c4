"""HTTP routes for the element catalog (doc 4.7) and per-instance configuration entries (doc 4.2).

Clients read `GET /elements/{key}` to learn which configuration an element needs; the
configuration entries let a client change one value of a live instance, the way the vendor's
event-management guide adds a callback URL.
"""

from __future__ import annotations

from aiohttp import web

from open_connectors_simulator.httputil import ApiError, json_ok, parse_instance_id, read_json_object
from open_connectors_simulator.instances import state_of, token_instance
from open_connectors_simulator.store import Instance


async def list_elements(request: web.Request) -> web.Response:
    return json_ok([element.summary_json() for element in state_of(request).catalog.all()])


async def element_keys(request: web.Request) -> web.Response:
    return json_ok(state_of(request).catalog.keys)


async def get_element(request: web.Request) -> web.Response:
    return json_ok(state_of(request).element(request.match_info["keyOrId"]).detail_json())


async def element_configuration(request: web.Request) -> web.Response:
    element = state_of(request).element(request.match_info["keyOrId"])
    return json_ok(element.detail_json()["configuration"])


def _instance(request: web.Request) -> Instance:
    if "id" not in request.match_info:
        return token_instance(request)
    return state_of(request).instance(parse_instance_id(request.match_info["id"]))


def _config_id(request: web.Request) -> int:
    raw = request.match_info["configId"]
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, f"Invalid configuration id '{raw[:40]}': expected an integer")
    return int(raw)


async def list_configuration(request: web.Request) -> web.Response:
    instance = _instance(request)
    return json_ok(state_of(request).configuration_entries(instance))


async def get_configuration(request: web.Request) -> web.Response:
    instance = _instance(request)
    return json_ok(state_of(request).configuration_entry(instance, _config_id(request)))


async def patch_configuration(request: web.Request) -> web.Response:
    instance = _instance(request)
    config_id = _config_id(request)
    state = state_of(request)
    state.configuration_entry(instance, config_id)  # 404 before reading a body for nothing
    body = await read_json_object(request)
    state.patch_configuration_entry(instance, config_id, body)
    return json_ok(state.configuration_entry(instance, config_id))


def add_element_routes(router: web.UrlDispatcher, base: str) -> None:
    router.add_get(f"{base}/elements", list_elements, allow_head=False)
    router.add_get(f"{base}/elements/keys", element_keys, allow_head=False)
    router.add_get(f"{base}/elements/{{keyOrId}}", get_element, allow_head=False)
    router.add_get(f"{base}/elements/{{keyOrId}}/configuration", element_configuration, allow_head=False)
    for prefix in (f"{base}/instances", f"{base}/instances/{{id}}"):
        router.add_get(f"{prefix}/configuration", list_configuration, allow_head=False)
        router.add_get(f"{prefix}/configuration/{{configId}}", get_configuration, allow_head=False)
        router.add_patch(f"{prefix}/configuration/{{configId}}", patch_configuration)
