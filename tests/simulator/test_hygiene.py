"""Bad requests get a clean 4xx with the error body: never a 500, never a hang."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle, SimulatorProcess
from tests.simulator.support import assert_error, closeio_body, create

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"name": ', "Malformed JSON"),
        (b"{'name': 'single quotes'}", "Malformed JSON"),
        (b"\xff\xfe{}", "Malformed JSON"),
        (b"[" * 100_000, "Malformed JSON"),
        (b'["not", "an", "object"]', "JSON object"),
        (b"", "body is required"),
        (b"   ", "body is required"),
    ],
)
def test_malformed_bodies_are_400(simulator_client: httpx.Client, content: bytes, fragment: str) -> None:
    assert_error(simulator_client.post("/instances", content=content, headers=JSON), 400, fragment)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(simulator_client: httpx.Client, content_type: str | None) -> None:
    instance = create(simulator_client, closeio_body())
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"name": "x"}'
    assert_error(simulator_client.post("/instances", content=body, headers=headers), 415, "application/json")
    assert_error(simulator_client.put(f"/instances/{instance['id']}", content=body, headers=headers), 415)
    assert_error(simulator_client.patch(f"/instances/{instance['id']}", content=body, headers=headers), 415)


def test_json_with_charset_and_vendor_suffix_is_accepted(simulator_client: httpx.Client) -> None:
    import json

    payload = json.dumps(closeio_body()).encode()
    for content_type in ("application/json; charset=utf-8", "application/vnd.example+json"):
        response = simulator_client.post(
            "/instances", content=payload, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text


def test_oversized_body_is_413_and_the_server_keeps_serving(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    body = closeio_body(description="x" * (2 * 1024 * 1024))
    assert_error(simulator_client.post("/instances", json=body), 413)
    assert simulator.control.instances() == []
    create(simulator_client, closeio_body())


def test_chunked_oversized_body_is_413(simulator_client: httpx.Client) -> None:
    def chunks() -> object:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = simulator_client.post("/instances", content=chunks(), headers=JSON)  # type: ignore[arg-type]
    assert_error(response, 413)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_unknown_and_non_integer_ids(simulator_client: httpx.Client, method: str) -> None:
    kwargs: dict[str, object] = {"json": {"name": "x"}} if method in ("PUT", "PATCH") else {}
    assert_error(simulator_client.request(method, "/instances/424242424", **kwargs), 404, "424242424")  # type: ignore[arg-type]
    for bad in ("abc", "-1", "1.5", "9" * 40):
        assert_error(simulator_client.request(method, f"/instances/{bad}", **kwargs), 400, "id")  # type: ignore[arg-type]


def test_unknown_routes_and_wrong_methods(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    assert_error(simulator_client.get("/nothing/here"), 404, "/nothing/here")
    assert_error(httpx.get(f"{simulator.base_url}/elsewhere", timeout=10), 404)
    assert_error(simulator_client.get("/elements/nonexistent-element"), 404, "nonexistent-element")
    response = simulator_client.post("/instances/1", json={})
    assert_error(response, 405)
    assert "PUT" in response.headers["Allow"]
    assert_error(simulator_client.delete("/elements/closeio"), 405)


def test_logs_carry_no_secrets_or_tokens(
    simulator: SimulatorHandle, simulator_client: httpx.Client, simulator_process: SimulatorProcess
) -> None:
    instance = create(simulator_client, closeio_body())
    simulator_client.get("/instances")
    simulator_client.get("/instances", headers={"Authorization": "User wrong, Organization wrong"})
    simulator_client.put(
        "/instances/enabled",
        headers={"Authorization": f"{simulator.authorization}, Element {instance['token']}"},
    )
    # The log line for the last request is written before the response, so it is on disk now.
    log = simulator_process.log_path.read_text()
    assert "PUT /elements/api-v2/instances/enabled" in log
    for secret in (
        simulator.user_secret,
        simulator.organization_secret,
        instance["token"],
        "close-password-secret",
    ):
        assert secret not in log
