"""`openconnectors.client.InstancesClient` against answers a real platform rarely gives on demand.

The simulator tests cover the happy paths over real HTTP, and tests/integration/test_hostile_client.py
the attacks over real sockets; here `httpx.MockTransport` produces each status, malformed bodies
and transport failures. Covers: the status-to-exception mapping (409 included), `Retry-After`
parsing, the request id from the `Elements-Request-Id` header or the body's `requestId` and its
rejection when it is no id or carries a secret, redaction of the account secrets and the
configuration values sent (encoded echoes included), `ConnectError`/`ReadTimeout` becoming
`NetworkError`/`Timeout` with no Authorization value in any message, repr or chained exception,
credentials that no header can carry refused before any request, answers without an integer id
or a token (204 included) failing with their real status, ids written as JSON numbers with a
fraction or an exponent (`400001.0`, `4.00001e5`) read exactly in every answer (create, get,
update, search, listing) and anything else that is no integer in 0..2**63-1 refused (issue 18),
instance facts redacted and capped, the response size cap (declared and streamed) and refused
compression, the overall deadline, the per-host bound on calls in flight (a host is its name: not
its scheme, port, case or trailing dot) and the per-namespace bound inside the global one,
`delete()` treating 404 as done, `find_by_tag()` following `Elements-Next-Page-Token`, returning
[] on 404, keeping only instances that carry the tag and stopping at a repeated token or the page
limit, the Authorization header, the observer hook, and that `Credentials` and `Instance` reprs
hide their secrets.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from connector_operator.openconnectors import client as client_module
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.answers import MAX_LISTED
from connector_operator.openconnectors.budget import AccountGate, Budget
from connector_operator.openconnectors.client import Credentials, Instance, InstancesClient, host_of
from connector_operator.openconnectors.instance import MAX_TAGS
from connector_operator.openconnectors.redaction import MASK
from tests.fixtures.waiting import eventually

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
        client = InstancesClient(transport=httpx.MockTransport(handler), **{"timeout": 5.0, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def instance_json(instance_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": instance_id, "token": f"token-{instance_id}", "name": f"i{instance_id}", **extra}


def tagged(instance_id: int, *tags: str) -> dict[str, Any]:
    return instance_json(instance_id, tags=list(tags))


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
        f"pagination.max=50 of 500"
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
    # A value shorter than the minimum ("50") is masked as a whole token only: "500" stays readable.
    assert error.message.count(MASK) == 5
    assert f"pagination.max={MASK} of 500" in error.message


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
        tag = params["tags[]"]
        if "nextPage" not in params:
            return httpx.Response(
                200,
                json=[tagged(1, tag), tagged(2, tag)],
                headers={"Elements-Next-Page-Token": "cursor-2"},
            )
        if params["nextPage"] == "cursor-2":
            return httpx.Response(
                200, json=[tagged(3, tag)], headers={"Elements-Next-Page-Token": "cursor-3"}
            )
        return httpx.Response(200, json=[tagged(4, tag)])

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
        return httpx.Response(200, json=[tagged(1, "t")], headers={"Elements-Next-Page-Token": ""})

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


# Credentials that no header can carry (findings 7 and 14)


@pytest.mark.parametrize(
    ("user", "organization", "key", "problem"),
    [
        pytest.param(
            USER_SECRET + "\n", ORGANIZATION_SECRET, "userSecret", "line break", id="trailing-newline"
        ),
        pytest.param(USER_SECRET, "org\r\nX-Injected: 1", "organizationSecret", "line break", id="crlf"),
        pytest.param(USER_SECRET, ORGANIZATION_SECRET + "\t", "organizationSecret", "control", id="tab"),
        pytest.param("user-Sécret-0123", ORGANIZATION_SECRET, "userSecret", "printable ASCII", id="latin-1"),
        pytest.param(USER_SECRET, "org-秘密-0123", "organizationSecret", "printable ASCII", id="cjk"),
        pytest.param(USER_SECRET, "org\x7f0123456", "organizationSecret", "control", id="delete"),
    ],
)
@pytest.mark.parametrize("method", ["create", "get", "update", "delete", "find_by_tag"])
async def test_credentials_no_header_can_carry_are_refused_before_any_request(
    make_client: MakeClient, user: str, organization: str, key: str, problem: str, method: str
) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=instance_json(1))

    client = make_client(handler)
    credentials = Credentials(user, organization)
    calls = {
        "create": lambda: client.create(API, credentials, BODY),
        "get": lambda: client.get(API, credentials, 1),
        "update": lambda: client.update(API, credentials, 1, BODY),
        "delete": lambda: client.delete(API, credentials, 1),
        "find_by_tag": lambda: client.find_by_tag(API, credentials, "t"),
    }
    with pytest.raises(errors.InvalidCredentials) as raised:
        await calls[method]()
    assert requests == []
    assert raised.value.key == key
    text = str(raised.value)
    assert f"key {key}" in text
    assert problem in text
    for value in (user, organization):
        assert value.strip() not in text
    assert raised.value.__context__ is None


async def test_printable_ascii_credentials_with_spaces_are_sent(make_client: MakeClient) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=instance_json(1))

    await make_client(handler).get(API, Credentials("a b~!", "c=d/e+f"), 1)
    assert seen[0].headers["Authorization"] == "User a b~!, Organization c=d/e+f"


# Request ids (findings 7 and 11)


@pytest.mark.parametrize(
    ("headers", "payload"),
    [
        pytest.param({"Elements-Request-Id": "r" * 100_000}, {"message": "no"}, id="huge-header"),
        pytest.param({}, {"message": "no", "requestId": "r" * 2_000_000}, id="two-megabyte-body-id"),
        pytest.param({"Elements-Request-Id": f"req-{USER_SECRET}"}, {"message": "no"}, id="secret-in-header"),
        pytest.param({}, {"message": "no", "requestId": ORGANIZATION_SECRET.upper()}, id="secret-in-body"),
        pytest.param({}, {"message": "no", "requestId": "id with spaces"}, id="not-id-shaped"),
        pytest.param({}, {"message": "no", "requestId": ["a", "list"]}, id="not-a-string"),
    ],
)
async def test_a_request_id_that_is_no_id_or_carries_a_secret_is_dropped(
    make_client: MakeClient,
    headers: dict[str, str],
    payload: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="connector_operator.openconnectors.client")
    client = make_client(answer(500, payload, headers))
    with pytest.raises(errors.ServerError) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert raised.value.request_id is None
    assert str(raised.value) == "HTTP 500: no"
    assert len(caplog.text) < 1000
    assert_no_secret(caplog.text.upper())
    assert_no_secret(caplog.text)
    assert "(request id -)" in caplog.text


async def test_a_secret_echoed_url_encoded_and_in_capitals_is_redacted(make_client: MakeClient) -> None:
    from urllib.parse import quote, quote_plus

    message = (
        f"bad key {quote(API_KEY, safe='')} for {quote_plus(USER_SECRET)} / {ORGANIZATION_SECRET.upper()}"
    )
    client = make_client(answer(400, {"message": message}))
    with pytest.raises(errors.BadRequest) as raised:
        await client.create(API, CREDENTIALS, {**BODY, "configuration": {"key": "a/b c+d=e&f"}})
    assert raised.value.message == f"bad key {quote(API_KEY, safe='')} for {MASK} / {MASK}"  # not sent here
    with pytest.raises(errors.BadRequest) as raised:
        await make_client(answer(400, {"message": message})).create(API, CREDENTIALS, BODY)
    assert raised.value.message == f"bad key {MASK} for {MASK} / {MASK}"


# Honest answers (finding 10)


@pytest.mark.parametrize(
    ("response", "fragment"),
    [
        pytest.param(httpx.Response(200, json={"id": 7}), "without a token", id="no-token"),
        pytest.param(httpx.Response(200, json={"id": 7, "token": ""}), "without a token", id="empty-token"),
        pytest.param(
            httpx.Response(200, json={"id": 7, "token": 12}), "without a token", id="token-not-string"
        ),
        pytest.param(httpx.Response(201, json={"token": "t"}), "integer id", id="no-id"),
        pytest.param(httpx.Response(200, json={"id": "7", "token": "t"}), "integer id", id="id-a-string"),
        pytest.param(httpx.Response(200, json={"id": True, "token": "t"}), "integer id", id="id-a-bool"),
        pytest.param(
            httpx.Response(200, json={"id": 2**63, "token": "t"}), "integer id", id="id-beyond-int64"
        ),
        pytest.param(httpx.Response(200, json={"id": -1, "token": "t"}), "integer id", id="negative-id"),
        pytest.param(httpx.Response(200, json={"id": 7, "token": "t" * 1025}), "over 1024", id="huge-token"),
        pytest.param(httpx.Response(204), "an empty body", id="204"),
        pytest.param(httpx.Response(200), "an empty body", id="200-empty"),
        pytest.param(httpx.Response(202, json=[instance_json(1)]), "not an instance", id="list"),
    ],
)
@pytest.mark.parametrize("method", ["create", "get", "update"])
async def test_an_answer_without_id_and_token_is_an_error_with_the_real_status(
    make_client: MakeClient, response: httpx.Response, fragment: str, method: str
) -> None:
    client = make_client(lambda request: response)
    calls = {
        "create": lambda: client.create(API, CREDENTIALS, BODY),
        "get": lambda: client.get(API, CREDENTIALS, 7),
        "update": lambda: client.update(API, CREDENTIALS, 7, BODY),
    }
    with pytest.raises(errors.MalformedResponse) as raised:
        await calls[method]()
    assert raised.value.status == response.status_code
    assert str(raised.value).startswith(f"HTTP {response.status_code}: ")
    assert fragment in raised.value.message


async def test_instance_facts_are_redacted_and_capped(make_client: MakeClient) -> None:
    element = {"key": "closeio", "name": f"Close {USER_SECRET}", "hub": "h" * 10_000, "authenticationType": 5}
    client = make_client(answer(200, instance_json(7, name=API_KEY, element=element, tags=["t"] * 1000)))
    instance = await client.create(API, CREDENTIALS, BODY)
    assert instance.element_name == f"Close {MASK}"
    # The name is kept as the platform holds it, for the drift comparison, and is never reported.
    assert instance.name == API_KEY
    assert API_KEY not in repr(instance)
    assert instance.hub is not None
    assert len(instance.hub) == 253
    assert instance.authentication_type == "5"
    assert len(instance.tags) == MAX_TAGS  # the user's 50 and the operator's own


# Size (finding 4, responses)


def _streamed(chunks: int, chunk: bytes = b"x" * 65536, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(chunks):
                yield chunk

        return httpx.Response(200, content=body(), headers=headers)

    return handler


async def test_a_declared_content_length_over_the_cap_fails_before_the_body_is_read(
    make_client: MakeClient,
) -> None:
    produced: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for index in range(3000):
                produced.append(index)
                yield b"x" * 65536

        return httpx.Response(502, content=body(), headers={"Content-Length": str(3000 * 65536)})

    with pytest.raises(errors.ResponseTooLarge) as raised:
        await make_client(handler).get(API, CREDENTIALS, 7)
    assert str(raised.value) == "HTTP 502: response larger than 5 MiB"
    assert isinstance(raised.value, errors.ServerError)
    assert produced == []


async def test_a_streamed_body_over_the_cap_stops_at_the_cap(make_client: MakeClient) -> None:
    read: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for index in range(3000):  # 187 MiB if read to the end
                read.append(index)
                yield b"[" * 65536

        return httpx.Response(200, content=body())

    with pytest.raises(errors.ResponseTooLarge) as raised:
        await make_client(handler).find_by_tag(API, CREDENTIALS, "t")
    assert raised.value.status == 200
    assert raised.value.message == "response larger than 5 MiB"
    assert len(read) == 5 * 16 + 1  # 64 KiB chunks: the first one past 5 MiB ends the read


async def test_the_cap_is_configurable_and_named_in_the_message(make_client: MakeClient) -> None:
    client = make_client(_streamed(2, b"x" * 1024), max_response_bytes=1536)
    with pytest.raises(errors.ResponseTooLarge, match=r"^HTTP 200: response larger than 1536 bytes$"):
        await client.get(API, CREDENTIALS, 7)
    client = make_client(_streamed(1, b"x" * 1536), max_response_bytes=1536)
    with pytest.raises(errors.MalformedResponse, match="invalid JSON"):  # at the cap: read, then parsed
        await client.get(API, CREDENTIALS, 7)


async def test_a_compressed_body_is_refused(make_client: MakeClient) -> None:
    import gzip

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = gzip.compress(json.dumps(instance_json(1)).encode())
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    with pytest.raises(errors.MalformedResponse, match="compressed"):
        await make_client(handler).get(API, CREDENTIALS, 7)
    assert seen[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("depth", [100_000])
async def test_deeply_nested_json_is_invalid_json(make_client: MakeClient, depth: int) -> None:
    client = make_client(lambda request: httpx.Response(200, content=b"[" * depth + b"]" * depth))
    with pytest.raises(errors.MalformedResponse, match="invalid JSON"):
        await client.find_by_tag(API, CREDENTIALS, "t")


# Time: the overall deadline (finding 3)


async def test_a_trickling_body_ends_at_the_overall_deadline(make_client: MakeClient) -> None:

    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield b'{"id": 1, '
            while True:  # one byte every 0.1 s: each read is quick, the whole never ends
                await asyncio.sleep(0.1)
                yield b" "

        return httpx.Response(200, content=body())

    observed: list[tuple[str, str, float]] = []
    client = make_client(handler, timeout=0.5, observer=lambda *seen: observed.append(seen))
    started = time.monotonic()
    with pytest.raises(errors.Timeout) as raised:
        await client.get(API, CREDENTIALS, 7)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert str(raised.value) == "GET /instances/7: no complete answer within 0.5s"
    assert [outcome for _, outcome, _ in observed] == ["timeout"]


# Concurrency per host (finding 3)


async def test_a_slow_host_holds_only_its_own_share_of_the_slots(make_client: MakeClient) -> None:
    release, two_in_flight = asyncio.Event(), asyncio.Event()
    slow_in_flight: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.test":
            slow_in_flight.append(request.url.path)
            if len(slow_in_flight) == 2:
                two_in_flight.set()
            await release.wait()
        return httpx.Response(200, json=instance_json(1))

    client = make_client(handler, max_in_flight=3, max_in_flight_per_host=2)
    slow = [
        asyncio.create_task(client.get("https://slow.test/elements/api-v2", CREDENTIALS, i)) for i in range(6)
    ]
    await asyncio.wait_for(two_in_flight.wait(), 5)
    # Two of the three global slots are the slow host's; the third still serves everyone else.
    other = [client.get(f"https://fast-{i}.test/elements/api-v2", CREDENTIALS, 1) for i in range(5)]
    assert [i.id for i in await asyncio.wait_for(asyncio.gather(*other), 5)] == [1] * 5
    assert len(slow_in_flight) == 2  # the other four slow calls had all that time to enter, and did not
    release.set()
    assert len(await asyncio.gather(*slow)) == 6


def in_flight_counter(slow: Callable[[httpx.Request], bool]) -> tuple[Any, dict[str, int], asyncio.Event]:
    """A handler holding the `slow` requests until released, and the peak of them in flight."""
    release, count = asyncio.Event(), {"now": 0, "peak": 0}

    async def handler(request: httpx.Request) -> httpx.Response:
        if slow(request):
            count["now"] += 1
            count["peak"] = max(count["peak"], count["now"])
            try:
                await release.wait()
            finally:
                count["now"] -= 1
        return httpx.Response(200, json=instance_json(1))

    return handler, count, release


async def settle(client: InstancesClient, count: dict[str, int], expected: int) -> None:
    """Until `expected` slow calls are in flight (polled against a deadline), then time for any
    queued call that could enter too to enter: a call to another host completes."""
    await eventually(lambda: count["now"] >= expected, 5, f"{expected} calls in flight", interval=0.01)
    await client.get("https://elsewhere.test/api", CREDENTIALS, 1)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://api.example.com/elements/api-v2", "api.example.com"),
        ("https://API.Example.COM:8443/elements/api-v2", "api.example.com"),
        ("http://api.example.com./elements/api-v2", "api.example.com"),
        ("https://api.example.com.:443/x", "api.example.com"),
        ("http://[::1]:8080/x", "::1"),
        ("http://127.0.0.1:8081/x", "127.0.0.1"),
    ],
)
def test_the_host_of_a_url_is_its_name_without_case_trailing_dot_scheme_or_port(url: str, host: str) -> None:
    assert host_of(url) == host


async def test_ports_schemes_case_and_a_trailing_dot_are_one_host(make_client: MakeClient) -> None:
    handler, count, release = in_flight_counter(lambda r: r.url.host.rstrip(".") == "h.test")
    client = make_client(handler, max_in_flight=10, max_in_flight_per_host=1)
    urls = [
        "https://h.test/api",
        "https://h.test:8443/api",
        "http://h.test/api",
        "http://h.test:8081/api",
        "https://H.TEST:443/api",
        "https://h.test./api",
    ]
    tasks = [asyncio.create_task(client.get(url, CREDENTIALS, 1)) for url in urls]
    await settle(client, count, 1)
    assert count["now"] == 1  # keyed by scheme://host:port, five of them were in flight
    release.set()
    await asyncio.gather(*tasks)
    assert count["peak"] == 1


async def test_a_namespace_holds_at_most_its_share_whatever_hosts_it_names(make_client: MakeClient) -> None:
    handler, count, release = in_flight_counter(lambda r: r.url.host.startswith("slow-"))
    client = make_client(handler, max_in_flight=4, max_in_flight_per_host=4)
    # Five hosts of hers, three calls each: per host alone, they would take all four global slots.
    hers = [
        asyncio.create_task(client.get(f"https://slow-{h}.test/api", CREDENTIALS, i, namespace="hers"))
        for h in range(5)
        for i in range(3)
    ]
    await settle(client, count, 3)
    assert count["now"] == 3  # the namespace's share: the per-host bound less a quarter by default
    # Another namespace's calls, and calls without a namespace, still find a free global slot.
    others = [client.get(f"https://fast-{i}.test/api", CREDENTIALS, 1, namespace="other") for i in range(5)]
    assert len(await asyncio.wait_for(asyncio.gather(*others), 5)) == 5
    # Her own calls to a fast host wait behind her share: the bound is hers, not the slow hosts'.
    mine = asyncio.create_task(client.get("https://fast.test/api", CREDENTIALS, 1, namespace="hers"))
    await settle(client, count, 3)
    assert not mine.done()
    release.set()
    await asyncio.gather(*hers, mine)
    assert count["peak"] == 3


async def test_the_namespace_share_is_configurable(make_client: MakeClient) -> None:
    handler, count, release = in_flight_counter(lambda r: r.url.host.startswith("slow-"))
    client = make_client(handler, max_in_flight=10, max_in_flight_per_host=2, max_in_flight_per_namespace=3)
    calls = [
        asyncio.create_task(client.get(f"https://slow-{h}.test/api", CREDENTIALS, 1, namespace="ns"))
        for h in range(4)
    ]
    await settle(client, count, 3)
    assert count["now"] == 3
    release.set()
    await asyncio.gather(*calls)


@pytest.mark.parametrize(
    "options",
    [
        {"max_in_flight_per_host": 0},
        {"max_in_flight_per_namespace": 0},
        {"max_in_flight": 0},
        {"max_pages": 0},
        {"max_response_bytes": 0},
        {"timeout": 0},
    ],
)
def test_the_bounds_must_be_positive(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"positive|at least 1"):
        InstancesClient(**options)


# Searches (findings 8 and 9)


async def test_find_by_tag_keeps_only_instances_carrying_the_tag(make_client: MakeClient) -> None:
    page = [
        tagged(1, "k8s-uid:abc"),
        tagged(2, "k8s-uid:other"),
        tagged(3, "crm", "k8s-uid:abc"),
        tagged(4, "K8S-UID:ABC"),
        tagged(5, " k8s-uid:abc"),
        tagged(6, "k8s-uid:abcd"),
        instance_json(7),
        {"id": "garbage without the tag"},
        "not even an object",
        {**tagged(8), "tags": "k8s-uid:abc"},
    ]
    found = await make_client(answer(200, page)).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    assert [i.id for i in found] == [1, 3]


async def test_find_by_tag_ignoring_the_filter_adopts_nothing(make_client: MakeClient) -> None:
    everything = [tagged(i, f"k8s-uid:someone-else-{i}") for i in range(1, 6)]
    assert await make_client(answer(200, everything)).find_by_tag(API, CREDENTIALS, "k8s-uid:mine") == []


async def test_a_tagged_search_result_that_is_not_an_instance_is_an_error(make_client: MakeClient) -> None:
    with pytest.raises(errors.MalformedResponse, match="without a token"):
        await make_client(answer(200, [{"id": 1, "tags": ["t"]}])).find_by_tag(API, CREDENTIALS, "t")


async def test_a_repeated_page_token_ends_the_search(make_client: MakeClient) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        token = "again" if len(calls) > 1 else "first"
        return httpx.Response(
            200, json=[tagged(len(calls), "t")], headers={"Elements-Next-Page-Token": token}
        )

    with pytest.raises(errors.MalformedResponse) as raised:
        await make_client(handler).find_by_tag(API, CREDENTIALS, "t")
    assert str(raised.value) == "HTTP 200: the platform's search repeated a next-page token; search stopped"
    assert len(calls) == 3  # first, again, again: the second "again" is the repeat


async def test_a_search_stops_after_the_page_limit(make_client: MakeClient) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=[], headers={"Elements-Next-Page-Token": f"page-{len(calls)}"})

    with pytest.raises(errors.MalformedResponse, match="did not end within 50 pages"):
        await make_client(handler).find_by_tag(API, CREDENTIALS, "t")
    assert len(calls) == 50
    calls.clear()
    with pytest.raises(errors.MalformedResponse, match="did not end within 3 pages"):
        await make_client(handler, max_pages=3).find_by_tag(API, CREDENTIALS, "t")
    assert len(calls) == 3


async def test_an_oversized_page_token_ends_the_search(make_client: MakeClient) -> None:
    headers = {"Elements-Next-Page-Token": "p" * 5000}
    with pytest.raises(errors.MalformedResponse, match="oversized page token"):
        await make_client(answer(200, [], headers)).find_by_tag(API, CREDENTIALS, "t")


async def test_a_listing_keeps_identity_tags_past_the_fiftieth_and_asks_for_no_tag(
    make_client: MakeClient,
) -> None:
    """Review of issue 13, HIGH 2: an instance of an object with 50 tags of its own carries the
    identity tags after them; an `Instance` keeps the first 50 tags, so the listing must read the
    raw ones, or it misses the instance and the object gets a second one."""
    seen: list[httpx.Request] = []
    crowded = tagged(7, *(f"user-{n}" for n in range(50)), "k8s-uid:abc", "k8s-object:ns/crm")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[crowded, tagged(8, "someone-else"), {"id": "x", "tags": ["other"]}])

    found = await make_client(handler).find_tagged_with_prefix(API, CREDENTIALS, "k8s-uid:")
    assert found == [(7, ["k8s-uid:abc"])]
    assert "tags[]" not in seen[0].url.params


async def test_a_listed_instance_of_ours_without_an_integer_id_fails_the_listing(
    make_client: MakeClient,
) -> None:
    with pytest.raises(errors.MalformedResponse, match="integer id"):
        await make_client(answer(200, [{"id": "7", "tags": ["k8s-uid:abc"]}])).find_tagged_with_prefix(
            API, CREDENTIALS, "k8s-uid:"
        )


# IDs as JSON numbers with a fraction or an exponent (issue 18)


def raw_answer(body: str, headers: dict[str, str] | None = None) -> Handler:
    """An answer of exactly `body`: httpx's `json=` would write the numbers its own way."""

    def handler(request: httpx.Request) -> httpx.Response:
        content_type = {"Content-Type": "application/json"}
        return httpx.Response(200, content=body.encode(), headers={**content_type, **(headers or {})})

    return handler


INTEGRAL_IDS = [
    pytest.param("400001.0", 400001, id="fraction-zero"),
    pytest.param("4.00001e5", 400001, id="exponent"),
    pytest.param("400001E0", 400001, id="exponent-zero"),
    pytest.param("4000010e-1", 400001, id="negative-exponent"),
    pytest.param("-0.0", 0, id="negative-zero"),
    # Past 2**53 a float reads this as 9007199254740992, another instance.
    pytest.param("9007199254740993.0", 2**53 + 1, id="past-float-precision"),
    pytest.param("9223372036854775807.0", 2**63 - 1, id="int64-max"),
]


@pytest.mark.parametrize(("written", "expected"), INTEGRAL_IDS)
@pytest.mark.parametrize("method", ["create", "get", "update"])
async def test_an_integral_id_in_any_json_form_is_the_instance_id(
    make_client: MakeClient, written: str, expected: int, method: str
) -> None:
    client = make_client(raw_answer(f'{{"id": {written}, "token": "tok", "name": "n", "tags": []}}'))
    calls = {
        "create": lambda: client.create(API, CREDENTIALS, BODY),
        "get": lambda: client.get(API, CREDENTIALS, 7),
        "update": lambda: client.update(API, CREDENTIALS, 7, BODY),
    }
    instance = await calls[method]()
    assert instance.id == expected
    assert type(instance.id) is int


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("400001.5", id="fraction"),
        pytest.param("400001.0000000000000001", id="fraction-a-float-rounds-away"),
        pytest.param("4.000015e5", id="fractional-exponent"),
        pytest.param("-1.0", id="negative"),
        pytest.param("9223372036854775808.0", id="beyond-int64"),
        pytest.param("1e999999999", id="huge-exponent"),
        pytest.param("NaN", id="nan"),
        pytest.param("Infinity", id="infinity"),
        pytest.param('"400001"', id="string"),
        pytest.param("true", id="boolean"),
        pytest.param("null", id="null"),
        pytest.param("[400001]", id="list"),
    ],
)
async def test_an_id_that_is_no_integer_is_refused_in_every_answer(
    make_client: MakeClient, written: str
) -> None:
    one = f'{{"id": {written}, "token": "tok", "tags": ["k8s-uid:abc"]}}'
    with pytest.raises(errors.MalformedResponse, match="integer id"):
        await make_client(raw_answer(one)).create(API, CREDENTIALS, BODY)
    with pytest.raises(errors.MalformedResponse, match="integer id"):
        await make_client(raw_answer(f"[{one}]")).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    with pytest.raises(errors.MalformedResponse, match="integer id"):
        await make_client(raw_answer(f"[{one}]")).find_tagged_with_prefix(API, CREDENTIALS, "k8s-uid:")


async def test_a_number_beyond_what_can_be_decoded_is_invalid_json(make_client: MakeClient) -> None:
    body = '{"id": 1e99999999999999999999, "token": "tok"}'
    with pytest.raises(errors.MalformedResponse, match="invalid JSON"):
        await make_client(raw_answer(body)).create(API, CREDENTIALS, BODY)


async def test_searches_and_listings_keep_instances_whose_ids_are_written_as_floats(
    make_client: MakeClient,
) -> None:
    """Before issue 18 the listing failed and the search refused them: the object POSTed again, or
    never found (nor deleted) the instance its lost POST had made."""
    page = (
        '[{"id": 400001.0, "token": "t1", "tags": ["k8s-uid:abc"]},'
        ' {"id": 4.00002e5, "token": "t2", "tags": ["crm", "k8s-uid:abc"]},'
        ' {"id": 400003.0, "token": "t3", "tags": ["k8s-uid:other"]},'
        ' {"id": 400004.5, "token": "t4", "tags": ["someone-else"]}]'
    )
    found = await make_client(raw_answer(page)).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    assert [i.id for i in found] == [400001, 400002]
    listed = await make_client(raw_answer(page)).find_tagged_with_prefix(API, CREDENTIALS, "k8s-uid:")
    assert listed == [(400001, ["k8s-uid:abc"]), (400002, ["k8s-uid:abc"]), (400003, ["k8s-uid:other"])]


async def test_numbers_other_than_ids_read_as_before(make_client: MakeClient) -> None:
    """Numbers are decoded exactly (as Decimal) for the ids' sake; the configuration values kept
    for the drift check and an error's message read as they did with floats."""
    body = '{"id": 7, "token": "t", "configuration": {"a": 50.0, "b": 1.50, "c": 1e400, "d": 15, "e": true}}'
    instance = await make_client(raw_answer(body)).get(API, CREDENTIALS, 7)
    assert dict(instance.configuration) == {"a": "50.0", "b": "1.5", "c": "inf", "d": "15", "e": "true"}

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b'{"message": 1.50}', headers={"Content-Type": "application/json"})

    with pytest.raises(errors.BadRequest) as raised:
        await make_client(failing).get(API, CREDENTIALS, 7)
    assert raised.value.message == "1.5"


# --- tenant-findings N9: what a whole search may keep ----------------------------------------------


async def test_a_search_keeps_no_configuration(make_client: MakeClient) -> None:
    # A hostile platform's 4.8 MB of configuration per matching instance was kept for every page.
    heavy = {**tagged(7, "k8s-uid:abc"), "configuration": {f"key-{n}": "v" * 1000 for n in range(100)}}
    [found] = await make_client(answer(200, [heavy])).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    assert found.id == 7
    assert found.configuration == ()


async def test_a_listing_keeps_at_most_its_bound_over_all_pages(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The response cap is per page: 50 pages of 5 MiB of instances of ours were all kept (1.3 GiB).
    monkeypatch.setattr(client_module, "MAX_LISTED", MAX_LISTED._replace(finds=10))
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        page = [tagged(len(calls) * 100 + n, f"k8s-uid:{n}") for n in range(4)]
        return httpx.Response(200, json=page, headers={"Elements-Next-Page-Token": f"page-{len(calls)}"})

    with pytest.raises(errors.MalformedResponse, match="found more than 10 instances; search stopped"):
        await make_client(handler).find_tagged_with_prefix(API, CREDENTIALS, "k8s-uid:")
    assert len(calls) == 3  # 4 + 4 kept, the third page would make 12


async def test_a_listed_instance_keeps_as_many_of_its_tags_as_an_instance_does(
    make_client: MakeClient,
) -> None:
    flood = tagged(7, "k8s-uid:" + "x" * 100_000, *(f"k8s-uid:{n}" for n in range(10_000)))
    [(instance_id, tags)] = await make_client(answer(200, [flood])).find_tagged_with_prefix(
        API, CREDENTIALS, "k8s-uid:"
    )
    assert instance_id == 7
    assert tags == [f"k8s-uid:{n}" for n in range(MAX_TAGS)]


async def test_one_namespace_hanging_on_the_shared_host_leaves_another_namespace_a_slot(
    make_client: MakeClient,
) -> None:
    """Tenant-findings N5: with the production bounds, one namespace's forty hanging calls to the
    one platform host every tenant uses held all 8 of its slots (its own bound was the host's),
    and another namespace's call to that host waited for their deadline."""
    handler, count, release = in_flight_counter(
        lambda r: r.url.host == "shared.test" and r.url.path.endswith("/1")
    )
    client = make_client(handler, timeout=30.0)  # the production deadline
    hers = [
        asyncio.create_task(client.get("https://shared.test/api", CREDENTIALS, 1, namespace="hers"))
        for _ in range(40)
    ]
    await settle(client, count, 6)
    theirs = await asyncio.wait_for(
        client.get("https://shared.test/api", CREDENTIALS, 2, namespace="theirs"), 5
    )
    assert theirs.id == 1
    assert count["now"] == 6  # hers: the host's 8 less its reserve of 2
    release.set()
    await asyncio.gather(*hers)


async def test_a_call_waiting_for_a_host_slot_holds_no_token_of_its_account(make_client: MakeClient) -> None:
    """Review: the account's token was taken before the host's slot; a call that then waited for
    the slot behind slow calls was sent late, with later calls' tokens: above the rate."""
    handler, count, release = in_flight_counter(lambda r: r.url.path.endswith("/1"))
    client = make_client(handler, timeout=30.0, max_in_flight_per_host=1)
    gate = AccountGate("shared", Budget(requests_per_second=10, burst=2, max_in_flight=4))
    slow = asyncio.create_task(
        client.get("https://shared.test/api", CREDENTIALS, 1, gate=gate, namespace="a")
    )
    await eventually(lambda: count["now"] == 1, 5, "the slow call in flight", interval=0.01)
    await eventually(lambda: gate.snapshot().available >= 1.9, 5, "the bucket refilled", interval=0.01)
    behind = asyncio.create_task(
        client.get("https://shared.test/api", CREDENTIALS, 2, gate=gate, namespace="a")
    )
    await eventually(lambda: gate.snapshot().in_flight == 2, 5, "the second call admitted", interval=0.01)
    assert gate.snapshot().available >= 1.8  # it waits for the host's slot, holding no token
    release.set()
    await asyncio.gather(slow, behind)
