"""`GET /instances`: tag and text filters, cursor pagination, and 404 for an empty result."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.simulator.support import assert_error, closeio_body, create

NEXT_PAGE = "Elements-Next-Page-Token"


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [instance["name"] for instance in response.json()]


def _jira(name: str) -> dict[str, Any]:
    configuration = {"username": "u", "password": "p", "base.url": "https://jira.example.com"}
    return {"element": {"key": "jira"}, "name": name, "configuration": configuration}


def test_nothing_matching_is_a_404(simulator_client: httpx.Client) -> None:
    assert_error(simulator_client.get("/instances"), 404, "No instances found")
    create(simulator_client, closeio_body(name="a"))
    assert_error(simulator_client.get("/instances", params={"searchText": "zzz"}), 404, "No instances found")
    assert_error(simulator_client.get("/instances", params={"tags[]": "missing"}), 404)
    assert_error(simulator_client.get("/elements/jira/instances"), 404)


def test_tags_must_all_be_present(simulator_client: httpx.Client) -> None:
    create(simulator_client, closeio_body(name="both", tags=["x", "y"]))
    create(simulator_client, closeio_body(name="only-x", tags=["x"]))
    create(simulator_client, closeio_body(name="only-y", tags=["y"]))
    assert _names(simulator_client.get("/instances", params={"tags[]": "x"})) == ["both", "only-x"]
    assert _names(simulator_client.get("/instances", params=[("tags[]", "x"), ("tags[]", "y")])) == ["both"]
    assert _names(simulator_client.get("/instances", params={"tags": "y"})) == ["both", "only-y"]
    assert_error(simulator_client.get("/instances", params=[("tags[]", "x"), ("tags[]", "nope")]), 404)


def test_search_text_matches_name_substring_or_exact_element_key(simulator_client: httpx.Client) -> None:
    create(simulator_client, closeio_body(name="Acme Sales"))
    create(simulator_client, closeio_body(name="Other"))
    create(simulator_client, _jira("tracker"))
    assert _names(simulator_client.get("/instances", params={"searchText": "acme"})) == ["Acme Sales"]
    assert _names(simulator_client.get("/instances", params={"searchText": "SALES"})) == ["Acme Sales"]
    assert _names(simulator_client.get("/instances", params={"searchText": "jira"})) == ["tracker"]
    assert _names(simulator_client.get("/instances", params={"searchText": "closeio"})) == [
        "Acme Sales",
        "Other",
    ]
    # A partial element key is not a key match (and no name contains it).
    assert_error(simulator_client.get("/instances", params={"searchText": "clos"}), 404)
    combined = {"searchText": "closeio", "tags[]": "Other"}
    assert _names(simulator_client.get("/instances", params=combined)) == ["Other"]


def test_cursor_pagination_walks_every_instance_once(simulator_client: httpx.Client) -> None:
    created = [create(simulator_client, closeio_body(name=f"i{n}"))["id"] for n in range(5)]
    seen: list[int] = []
    pages = 0
    params: dict[str, Any] = {"pageSize": 2}
    while True:
        response = simulator_client.get("/instances", params=params)
        assert response.status_code == 200
        pages += 1
        seen.extend(instance["id"] for instance in response.json())
        token = response.headers.get(NEXT_PAGE)
        if not token:
            break
        params = {"pageSize": 2, "nextPage": token}
    assert pages == 3
    assert seen == created


def test_element_scoped_listing(simulator_client: httpx.Client) -> None:
    create(simulator_client, closeio_body(name="c"))
    create(simulator_client, _jira("j"))
    assert _names(simulator_client.get("/elements/jira/instances")) == ["j"]
    assert _names(simulator_client.get("/elements/closeio/instances")) == ["c"]
    assert_error(simulator_client.get("/elements/unknown-el/instances"), 404, "unknown-el")


def test_default_page_size_is_200(simulator_client: httpx.Client) -> None:
    for n in range(201):
        create(simulator_client, closeio_body(name=f"bulk{n}", tags=["bulk"]))
    first = simulator_client.get("/instances")
    assert len(first.json()) == 200
    token = first.headers[NEXT_PAGE]
    second = simulator_client.get("/instances", params={"nextPage": token})
    assert _names(second) == ["bulk200"]
    assert NEXT_PAGE not in second.headers
    assert len(simulator_client.get("/instances", params={"pageSize": 200}).json()) == 200


@pytest.mark.parametrize("size", ["0", "-1", "201", "abc", "1.5"])
def test_page_size_out_of_range_is_400(simulator_client: httpx.Client, size: str) -> None:
    create(simulator_client, closeio_body())
    assert_error(simulator_client.get("/instances", params={"pageSize": size}), 400, "pageSize")


@pytest.mark.parametrize("token", ["garbage!!", "YWZ0ZXI6eA==", "bm9wZQ=="])
def test_bad_cursor_is_400(simulator_client: httpx.Client, token: str) -> None:
    create(simulator_client, closeio_body())
    assert_error(simulator_client.get("/instances", params={"nextPage": token}), 400, "nextPage")
