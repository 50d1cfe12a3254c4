"""The Authorization header contract: lenient layout, strict values, one uniform 401."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import REQUEST_ID, UNAUTHORIZED, assert_error, closeio_body, create


def _get(
    simulator: SimulatorHandle, authorization: str | None, path: str = "/elements/closeio"
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.get(f"{simulator.api_url}{path}", headers=headers, timeout=10)


@pytest.mark.parametrize(
    "template",
    [
        "User {user}, Organization {org}",
        "Organization {org}, User {user}",
        # Leading/trailing blanks are not legal in a header value; inner ones are.
        "Organization   {org}  ,User {user}",
        "User\t{user},Organization {org},",
        "user {user}, organization {org}",
        "User {user}, Organization {org}, Element some-instance-token",
        "Element some-instance-token, Organization {org}, User {user}",
    ],
)
def test_pairs_in_any_order_and_the_three_part_form_are_accepted(
    simulator: SimulatorHandle, template: str
) -> None:
    header = template.format(user=simulator.user_secret, org=simulator.organization_secret)
    response = _get(simulator, header)
    assert response.status_code == 200, response.text
    assert response.json()["key"] == "closeio"


@pytest.mark.parametrize(
    "template",
    [
        None,
        "",
        "User {user}",
        "Organization {org}",
        "User {user}, Organization wrong-org-secret",
        "User wrong-user-secret, Organization {org}",
        "User {org}, Organization {user}",
        "Bearer {user}",
        "User, Organization {org}",
        "User {user}, Organization {org}, User someone-else",
    ],
)
def test_missing_or_wrong_secrets_get_the_platform_401(
    simulator: SimulatorHandle, template: str | None
) -> None:
    header = (
        None
        if template is None
        else template.format(user=simulator.user_secret, org=simulator.organization_secret)
    )
    response = _get(simulator, header)
    assert_error(response, 401)
    assert response.json()["message"] == UNAUTHORIZED


def test_401_has_the_exact_platform_body_on_create_and_creates_nothing(simulator: SimulatorHandle) -> None:
    response = httpx.post(
        f"{simulator.api_url}/instances",
        json=closeio_body(),
        headers={"Authorization": f"User {simulator.user_secret}, Organization nope"},
        timeout=10,
    )
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"requestId", "message"}
    assert body["message"] == UNAUTHORIZED
    assert REQUEST_ID.fullmatch(body["requestId"])
    assert simulator.control.instances() == []


def test_three_part_endpoints_need_a_live_element_token(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, closeio_body())
    account = simulator.authorization
    # No Element pair at all.
    assert_error(
        simulator_client.put("/instances/enabled", headers={"Authorization": account}), 401, UNAUTHORIZED
    )
    # A token nobody was issued.
    made_up = {"Authorization": f"{account}, Element not-a-real-token"}
    assert_error(simulator_client.delete("/instances/enabled", headers=made_up), 401, UNAUTHORIZED)
    # The real token works, until its instance is deleted.
    three_part = {"Authorization": f"Element {instance['token']}, {account}"}
    assert simulator_client.delete("/instances/enabled", headers=three_part).status_code == 200
    assert simulator_client.delete(f"/instances/{instance['id']}").status_code == 200
    assert_error(simulator_client.put("/instances/enabled", headers=three_part), 401, UNAUTHORIZED)


def test_request_id_header_is_on_every_response(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    responses = [
        simulator_client.get("/elements/closeio"),
        simulator_client.get("/instances"),  # 404, empty account
        _get(simulator, None),
        simulator_client.post("/instances", json=closeio_body()),
        httpx.get(f"{simulator.base_url}/_sim/health", timeout=10),
    ]
    ids = [response.headers.get("Elements-Request-Id", "") for response in responses]
    assert all(REQUEST_ID.fullmatch(value) for value in ids), ids
    assert len(set(ids)) == len(ids)
