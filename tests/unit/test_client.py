"""`openconnectors.client.InstancesClient` against answers a real platform rarely gives on demand.

The simulator tests cover the happy paths over real HTTP; here `httpx.MockTransport` produces
each status, malformed bodies and transport failures. Covers: the status-to-exception mapping
(409 included), `Retry-After` parsing, the request id from the `Elements-Request-Id` header or
the body's `requestId`, redaction of the account secrets and the configuration values sent,
`ConnectError`/`ReadTimeout` becoming `NetworkError`/`Timeout` with no Authorization value in any
message, repr or chained exception, `delete()` treating 404 as done, `find_by_tag()` following
`Elements-Next-Page-Token` and returning [] on 404, the Authorization header, the observer
hook, and that `Credentials` and `Instance` reprs hide their secrets.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials, Instance, InstancesClient
from connector_operator.openconnectors.redaction import MASK

API = "https://platform.test/elements/api-v2"
USER_SECRET = "user-Secret-0123456789"
ORGANIZATION_SECRET = "org-Secret-9876543210"
CREDENTIALS = Credentials(USER_SECRET, ORGANIZATION_SECRET)
AUTHORIZATION = f"User {USER_SECRET}, Organization {ORGANIZATION_SECRET}"
API_KEY = "closeio-Api-Key-abcdef"
BODY = {
    "name": "sales-acme",
    "element": {"key": "closeio"},
    "tags": ["k8s-uid:1234"],
    "configuration": {"username": API_KEY, "pagination.max": "50"},
}
ALL_SECRETS = (USER_SECRET, ORGANIZATION_SECRET, API_KEY)

Handler = Callable[[httpx.Request], httpx.Response]
MakeClient = Callable[..., InstancesClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[InstancesClient] = []

    def make(handler: Handler, **options: Any) -> InstancesClient:
        client = InstancesClient(transport=httpx.MockTransport(handler), timeout=5.0, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def instance_json(instance_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": instance_id, "token": f"token-{instance_id}", "name": f"i{instance_id}", **extra}


def answer(status: int, payload: Any = None, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload, headers=headers)

    return handler


def assert_no_secret(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text


# Status mapping


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, errors.BadRequest),
        (401, errors.Unauthorized),
        (403, errors.Forbidden),
        (404, errors.NotFound),
        (409, errors.ClientError),
        (429, errors.RateLimited),
        (500, errors.ServerError),
        (503, errors.ServerError),
    ],
)
async def test_each_status_raises_its_exception_class(
    make_client: MakeClient, status: int, error_class: type[errors.APIError]
) -> None:
    client = make_client(answer(status, {"requestId": "req-1", "message": f"platform says {status}"}))
    with pytest.raises(errors.APIError) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert type(raised.value) is error_class
    assert raised.value.status == status
    assert raised.value.message == f"platform says {status}"
    assert str(raised.value) == f"HTTP {status}: platform says {status} (request req-1)"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("1.5", 1.5), ("Wed, 21 Oct 2015 07:28:00 GMT", None), (None, None)],
)
async def test_rate_limited_carries_retry_after(
    make_client: MakeClient, header: str | None, expected: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else None
    client = make_client(answer(429, {"message": "Too many requests"}, headers))
    with pytest.raises(errors.RateLimited) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert raised.value.retry_after == expected


@pytest.mark.parametrize(
    ("headers", "payload", "expected"),
    [
        pytest.param({"Elements-Request-Id": "from-header"}, {"message": "no"}, "from-header", id="header"),
        pytest.param({}, {"message": "no", "requestId": "from-body"}, "from-body", id="body"),
        pytest.param(
            {"Elements-Request-Id": "from-header"},
            {"message": "no", "requestId": "from-body"},
            "from-header",
            id="header-wins",
        ),
        pytest.param({}, {"message": "no"}, None, id="none"),
    ],
)
async def test_request_id_comes_from_header_or_body(
    make_client: MakeClient, headers: dict[str, str], payload: dict[str, str], expected: str | None
) -> None:
    client = make_client(answer(500, payload, headers))
    with pytest.raises(errors.ServerError) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert raised.value.request_id == expected
    assert ("(request " in str(raised.value)) is (expected is not None)


async def test_provider_message_is_appended(make_client: MakeClient) -> None:
    client = make_client(answer(400, {"message": "Bad configuration", "providerMessage": "Invalid API key"}))
    with pytest.raises(errors.BadRequest) as raised:
        await client.create(API, CREDENTIALS, BODY)
    assert raised.value.message == "Bad configuration (provider: Invalid API key)"


# Malformed answers


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(502, text="<html><body>Bad gateway</body></html>"), id="html"),
        pytest.param(httpx.Response(502, json=["not", "an", "object"]), id="json-list"),
        pytest.param(httpx.Response(502), id="empty"),
    ],
)
async def test_an_error_without_a_json_object_uses_the_reason_phrase(
    make_client: MakeClient, response: httpx.Response
) -> None:
    client = make_client(lambda request: response)
    with pytest.raises(errors.ServerError) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert raised.value.message == "Bad Gateway"


async def test_a_success_with_invalid_json_is_a_server_error(make_client: MakeClient) -> None:
    client = make_client(lambda request: httpx.Response(200, text='{"id": 7, "tok'))
    with pytest.raises(errors.ServerError, match="invalid JSON"):
        await client.get(API, CREDENTIALS, 7)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(200, json={"name": "no id"}), id="object-without-id"),
        pytest.param(httpx.Response(200), id="empty-body"),
        pytest.param(httpx.Response(200, json=[instance_json(1)]), id="list-instead-of-object"),
    ],
)
async def test_a_success_that_is_not_an_instance_raises_a_server_error(
    make_client: MakeClient, response: httpx.Response
) -> None:
    client = make_client(lambda request: response)
    with pytest.raises(errors.ServerError):
        await client.get(API, CREDENTIALS, 7)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(200, json=instance_json(1)), id="object-instead-of-list"),
        pytest.param(httpx.Response(200), id="empty-body"),
    ],
)
async def test_a_search_page_that_is_not_a_list_raises_a_server_error(
    make_client: MakeClient, response: httpx.Response
) -> None:
    client = make_client(lambda request: response)
    with pytest.raises(errors.ServerError):
        await client.find_by_tag(API, CREDENTIALS, "t")


# Redaction


@pytest.mark.parametrize("method", ["create", "update"])
async def test_echoed_secrets_and_configuration_values_are_redacted(
    make_client: MakeClient, method: str
) -> None:
    message = (
        f"Invalid username {API_KEY} for account User {USER_SECRET}, Organization {ORGANIZATION_SECRET}; "
        f"pagination.max=50"
    )
    client = make_client(answer(400, {"message": message, "providerMessage": f"key {API_KEY} rejected"}))
    call = (
        client.create(API, CREDENTIALS, BODY)
        if method == "create"
        else client.update(API, CREDENTIALS, 7, BODY)
    )
    with pytest.raises(errors.BadRequest) as raised:
        await call
    error = raised.value
    for text in (error.message, str(error), repr(error)):
        assert_no_secret(text)
    assert error.message.count(MASK) == 4
    assert "pagination.max=50" in error.message  # values shorter than the minimum stay readable


async def test_credentials_echoed_by_a_read_are_redacted(make_client: MakeClient) -> None:
    client = make_client(
        answer(401, {"message": f"Unknown user secret {USER_SECRET} / {ORGANIZATION_SECRET}"})
    )
    with pytest.raises(errors.Unauthorized) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert_no_secret(str(raised.value))
    assert raised.value.message == f"Unknown user secret {MASK} / {MASK}"


async def test_long_error_messages_are_truncated(make_client: MakeClient) -> None:
    client = make_client(answer(500, {"message": "overloaded " * 100}))
    with pytest.raises(errors.ServerError) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert len(raised.value.message) <= 300
    assert raised.value.message.endswith("…")


# Transport errors


def _exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _leaking_transport(kind: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        # The worst case: the transport's own message quotes the request's Authorization header.
        raise kind(f"failed sending {request.headers['Authorization']}", request=request)

    return handler


@pytest.mark.parametrize(
    ("transport_error", "error_class"),
    [(httpx.ConnectError, errors.NetworkError), (httpx.ReadTimeout, errors.Timeout)],
)
async def test_transport_errors_become_ours_without_the_authorization_value(
    make_client: MakeClient,
    transport_error: type[httpx.TransportError],
    error_class: type[errors.TransportError],
) -> None:
    client = make_client(_leaking_transport(transport_error))
    with pytest.raises(errors.TransportError) as raised:
        await client.create(API, CREDENTIALS, BODY)
    error = raised.value
    assert type(error) is error_class
    assert str(error).startswith("POST /instances: ")
    assert_no_secret(str(error))
    assert_no_secret(repr(error))
    # Nothing is chained: neither a cause nor a context that still holds the request.
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_no_secret("".join(traceback.format_exception(error)))


@pytest.mark.parametrize("transport_error", [httpx.ConnectError, httpx.ReadTimeout])
async def test_chained_exceptions_hold_no_authorization_value(
    make_client: MakeClient, transport_error: type[httpx.TransportError]
) -> None:
    client = make_client(_leaking_transport(transport_error))
    with pytest.raises(errors.TransportError) as raised:
        await client.get(API, CREDENTIALS, 7)
    for link in _exception_chain(raised.value):
        assert_no_secret(str(link))
        assert_no_secret(repr(link))
        request = getattr(link, "_request", None)
        assert request is None or AUTHORIZATION not in request.headers.values()


# Calls


async def test_requests_carry_the_authorization_header_and_json(make_client: MakeClient) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=instance_json(71, element={"key": "closeio", "hub": "crm"}))

    client = make_client(handler)
    created = await client.create(API + "/", CREDENTIALS, BODY)
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == f"{API}/instances"
    assert request.headers["Authorization"] == AUTHORIZATION
    assert request.headers["Accept"] == "application/json"
    assert json.loads(request.content) == BODY
    assert (created.id, created.token, created.element_key, created.hub) == (71, "token-71", "closeio", "crm")


async def test_delete_treats_404_as_already_deleted(make_client: MakeClient) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(404, json={"message": "No instance found"})

    client = make_client(handler)
    assert await client.delete(API, CREDENTIALS, 9) is None
    assert seen == ["DELETE /elements/api-v2/instances/9"]


async def test_delete_success_and_failure(make_client: MakeClient) -> None:
    assert await make_client(lambda request: httpx.Response(200)).delete(API, CREDENTIALS, 9) is None
    with pytest.raises(errors.ServerError):
        await make_client(answer(503, {"message": "down"})).delete(API, CREDENTIALS, 9)


async def test_find_by_tag_follows_the_page_token(make_client: MakeClient) -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        if "nextPage" not in params:
            return httpx.Response(
                200,
                json=[instance_json(1), instance_json(2)],
                headers={"Elements-Next-Page-Token": "cursor-2"},
            )
        if params["nextPage"] == "cursor-2":
            return httpx.Response(
                200, json=[instance_json(3)], headers={"Elements-Next-Page-Token": "cursor-3"}
            )
        return httpx.Response(200, json=[instance_json(4)])

    found = await make_client(handler).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    assert [i.id for i in found] == [1, 2, 3, 4]
    assert [p.get("nextPage") for p in seen] == [None, "cursor-2", "cursor-3"]
    assert all(p["tags[]"] == "k8s-uid:abc" for p in seen)


async def test_find_by_tag_returns_nothing_on_404(make_client: MakeClient) -> None:
    found = await make_client(answer(404, {"message": "No instances found"})).find_by_tag(
        API, CREDENTIALS, "t"
    )
    assert found == []


async def test_find_by_tag_stops_on_an_empty_page_token(make_client: MakeClient) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=[instance_json(1)], headers={"Elements-Next-Page-Token": ""})

    assert [i.id for i in await make_client(handler).find_by_tag(API, CREDENTIALS, "t")] == [1]
    assert len(calls) == 1


async def test_find_by_tag_raises_other_errors(make_client: MakeClient) -> None:
    with pytest.raises(errors.Unauthorized):
        await make_client(answer(401, {"message": "no"})).find_by_tag(API, CREDENTIALS, "t")


async def test_observer_sees_method_outcome_and_duration(make_client: MakeClient) -> None:
    observed: list[tuple[str, str, float]] = []

    def observe(method: str, outcome: str, seconds: float) -> None:
        observed.append((method, outcome, seconds))

    await make_client(answer(200, instance_json(1)), observer=observe).get(API, CREDENTIALS, 1)
    with pytest.raises(errors.Timeout):
        await make_client(_leaking_transport(httpx.ReadTimeout), observer=observe).get(API, CREDENTIALS, 1)
    with pytest.raises(errors.NetworkError):
        await make_client(_leaking_transport(httpx.ConnectError), observer=observe).delete(
            API, CREDENTIALS, 1
        )
    assert [(m, o) for m, o, _ in observed] == [("GET", "200"), ("GET", "timeout"), ("DELETE", "network")]
    assert all(seconds >= 0 for _, _, seconds in observed)


def test_credentials_and_instance_reprs_hide_secrets() -> None:
    assert USER_SECRET not in repr(CREDENTIALS)
    assert ORGANIZATION_SECRET not in repr(CREDENTIALS)
    assert CREDENTIALS.header() == AUTHORIZATION
    instance = Instance.from_json(instance_json(5, token="instance-Token-value"))
    assert "instance-Token-value" not in repr(instance)
