"""The `/_sim` control API: inspect and reset state, inject faults, read call counters.

Tests and the benchmark drive the simulator's misbehaviour through this API so that one running
process can serve many scenarios. It lives outside `/elements/api-v2`, needs no credentials, and
is never subject to the faults it configures.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from open_connectors_simulator.faults import FaultKind, FaultRule, normalize_method
from open_connectors_simulator.httputil import ApiError, json_ok, parse_instance_id, read_json_object
from open_connectors_simulator.instances import state_of
from open_connectors_simulator.oauth import revoke_instance_grant
from open_connectors_simulator.store import Instance


def _int(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"'{key}' must be an integer between {low} and {high}")
    return value


def _bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, f"'{key}' must be a boolean")
    return value


def _instance(request: web.Request) -> Instance:
    return state_of(request).instance(parse_instance_id(request.match_info["id"]))


async def health(request: web.Request) -> web.Response:
    return json_ok({"status": "ok", "instances": len(state_of(request).store)})


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    return json_ok({"status": "reset"})


async def get_counters(request: web.Request) -> web.Response:
    counters = state_of(request).counters
    return json_ok({"counters": counters.snapshot(), "total": counters.total()})


async def get_requests(request: web.Request) -> web.Response:
    return json_ok({"requests": state_of(request).counters.log()})


async def reset_counters(request: web.Request) -> web.Response:
    state_of(request).counters.reset()
    return json_ok({"counters": {}, "total": 0})


async def list_raw_instances(request: web.Request) -> web.Response:
    return json_ok({"instances": [instance.raw_json() for instance in state_of(request).store.all()]})


async def get_raw_instance(request: web.Request) -> web.Response:
    return json_ok(_instance(request).raw_json())


async def patch_raw_instance(request: web.Request) -> web.Response:
    """Flip lifecycle flags the platform changes on its own (invalid credentials, auto-disable)."""
    instance = _instance(request)
    body = await read_json_object(request)
    valid, disabled = _bool(body, "valid"), _bool(body, "disabled")
    rotate_next = _bool(body, "rotateTokenOnNextUpdate")
    if valid is not None:
        instance.valid = valid
    if disabled is not None:
        instance.disabled = disabled
    if rotate_next is not None:
        instance.rotate_token_on_next_update = rotate_next
    return json_ok(instance.raw_json())


async def rotate_token(request: web.Request) -> web.Response:
    instance = _instance(request)
    state_of(request).store.rotate_token(instance)
    return json_ok(instance.raw_json())


async def revoke_refresh_token(request: web.Request) -> web.Response:
    """The provider revokes the refresh token the instance holds; its next refresh fails."""
    instance = _instance(request)
    revoke_instance_grant(state_of(request).oauth, instance)
    return json_ok(instance.raw_json())


async def refresh_instance(request: web.Request) -> web.Response:
    """One refresh attempt now, as the platform's own schedule would make (oauth.py)."""
    instance = _instance(request)
    state_of(request).refresh(instance)
    return json_ok(instance.raw_json())


async def set_oauth_code_ttl(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 86_400:
        raise ApiError(400, "'seconds' must be a number greater than 0 and at most 86400")
    provider = state_of(request).oauth
    provider.code_ttl_seconds = float(seconds)
    return json_ok({"codeTtlSeconds": provider.code_ttl_seconds})


async def get_faults(request: web.Request) -> web.Response:
    return json_ok(state_of(request).faults.to_json())


async def clear_faults(request: web.Request) -> web.Response:
    faults = state_of(request).faults
    faults.reset()
    return json_ok(faults.to_json())


async def set_latency(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    faults = state_of(request).faults
    faults.latency_ms = _int(body, "ms", None, 0, 60_000)
    return json_ok(faults.to_json())


async def set_error_rates(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    rates_raw = body.get("rates")
    if not isinstance(rates_raw, dict):
        raise ApiError(400, "'rates' must be an object of method -> probability")
    rates: dict[str, float] = {}
    for method, rate in rates_raw.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ApiError(400, f"rate for {method} must be a number between 0 and 1")
        rates[normalize_method(method)] = float(rate)
    status = _int(body, "status", None, 400, 599) if body.get("status") is not None else None
    seed = _int(body, "seed", None, 0, 2**63) if body.get("seed") is not None else None
    faults = state_of(request).faults
    faults.set_error_rates(rates, status, seed)
    return json_ok(faults.to_json())


async def add_rule(request: web.Request) -> web.Response:
    """Queue a counted rule: `{"kind", "method", "count", "route"?, "status"?, "retryAfter"?,
    "contains"?}`; with `contains` it counts and hits only calls whose body contains that string."""
    body = await read_json_object(request)
    try:
        kind = FaultKind(str(body.get("kind")))
    except ValueError as exc:
        allowed = ", ".join(kind.value for kind in FaultKind)
        raise ApiError(400, f"'kind' must be one of {allowed}") from exc
    route = body.get("route")
    if route is not None and (not isinstance(route, str) or not route.startswith("/")):
        raise ApiError(400, "'route' must be a route template such as /instances/{id}")
    contains = body.get("contains")
    if contains is not None and (not isinstance(contains, str) or not contains):
        raise ApiError(400, "'contains' must be a non-empty string")
    rule = FaultRule(
        kind=kind,
        method=normalize_method(body.get("method", "*")),
        remaining=_int(body, "count", 1, 1, 1_000_000),
        route=route,
        status=_int(body, "status", 503, 400, 599),
        retry_after=_int(body, "retryAfter", 1, 0, 86_400),
        contains=contains,
    )
    faults = state_of(request).faults
    faults.add_rule(rule)
    return json_ok(faults.to_json())


async def set_rotate_on_update(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    enabled = _bool(body, "enabled")
    if enabled is None:
        raise ApiError(400, "'enabled' must be a boolean")
    faults = state_of(request).faults
    faults.rotate_on_update = enabled
    return json_ok(faults.to_json())


def add_control_routes(router: web.UrlDispatcher, base: str) -> None:
    router.add_get(f"{base}/health", health, allow_head=False)
    router.add_post(f"{base}/reset", reset)
    router.add_get(f"{base}/counters", get_counters, allow_head=False)
    router.add_delete(f"{base}/counters", reset_counters)
    router.add_get(f"{base}/requests", get_requests, allow_head=False)
    router.add_get(f"{base}/instances", list_raw_instances, allow_head=False)
    router.add_get(f"{base}/instances/{{id}}", get_raw_instance, allow_head=False)
    router.add_patch(f"{base}/instances/{{id}}", patch_raw_instance)
    router.add_post(f"{base}/instances/{{id}}/rotate-token", rotate_token)
    router.add_post(f"{base}/instances/{{id}}/revoke-refresh-token", revoke_refresh_token)
    router.add_post(f"{base}/instances/{{id}}/refresh", refresh_instance)
    router.add_put(f"{base}/oauth/code-ttl", set_oauth_code_ttl)
    router.add_get(f"{base}/faults", get_faults, allow_head=False)
    router.add_delete(f"{base}/faults", clear_faults)
    router.add_put(f"{base}/faults/latency", set_latency)
    router.add_put(f"{base}/faults/error-rates", set_error_rates)
    router.add_post(f"{base}/faults/rules", add_rule)
    router.add_put(f"{base}/faults/rotate-on-update", set_rotate_on_update)
