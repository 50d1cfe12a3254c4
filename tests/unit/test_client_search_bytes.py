"""What a whole search or listing may keep, in bytes (tenant-findings N9, issue 20).

The response cap is per page and the count caps (`MAX_FOUND`, `MAX_LISTED`) count instances: 50
pages of instances with the longest tags still kept 250 MiB. `answers.gathered` also counts the
bytes a search keeps (`answers.held`). Covers: a search by tag and a listing stop with a clear error
at the page that passes their byte cap; bytes are counted as Python stores them (non-ASCII in
full); what was kept is dropped when the search fails; a legitimate listing of 50 pages of 200
instances with the longest marks fits. `httpx.MockTransport` answers; real sockets are in
tests/integration/test_hostile_listing.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connector_operator.openconnectors import client as client_module
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.answers import MAX_LISTED, Cap, gathered, held
from connector_operator.openconnectors.client import Credentials, InstancesClient
from connector_operator.openconnectors.instance import MAX_TAGS, Instance

API = "https://platform.test/elements/api-v2"
CREDENTIALS = Credentials("user-Secret-0123456789", "org-Secret-9876543210")
KIB = 1024


class Pages:
    """A platform answering every page with `page` and a fresh next-page token; counts the pages."""

    def __init__(self, page: list[dict[str, Any]]) -> None:
        self.page, self.calls = page, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(200, json=self.page, headers={"Elements-Next-Page-Token": f"page-{self.calls}"})


@pytest.fixture
async def instances() -> AsyncIterator[list[InstancesClient]]:
    made: list[InstancesClient] = []
    yield made
    for client in made:
        await client.aclose()


def serving(made: list[InstancesClient], pages: Pages) -> InstancesClient:
    client = InstancesClient(transport=httpx.MockTransport(pages), timeout=5.0)
    made.append(client)
    return client


def heavy(instance_id: int, first: str) -> dict[str, Any]:
    """An instance with as many tags, as long, as an Instance keeps: `first`, then 1 KiB ones."""
    tags = [first, *(f"{first}-{n}".ljust(KIB, "x") for n in range(MAX_TAGS - 1))]
    return {"id": instance_id, "token": f"token-{instance_id}", "name": "n" * KIB, "tags": tags}


async def test_a_search_by_tag_stops_at_the_page_that_passes_its_byte_cap(
    instances: list[InstancesClient],
) -> None:
    # Ten matching instances of about 70 KiB a page: the count cap (1,000) would allow all 50 pages.
    pages = Pages([heavy(7000 + n, "k8s-uid:abc") for n in range(10)])
    with pytest.raises(errors.MalformedResponse) as raised:
        await serving(instances, pages).find_by_tag(API, CREDENTIALS, "k8s-uid:abc")
    assert (
        str(raised.value)
        == "HTTP 200: the platform's search found more than 4 MiB of instances; search stopped"
    )
    one_page = sum(held(Instance.from_json(item)) for item in pages.page)
    assert (pages.calls - 1) * one_page <= 4 * KIB * KIB < pages.calls * one_page


async def test_a_listing_stops_at_the_page_that_passes_its_byte_cap(
    instances: list[InstancesClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_LISTED", Cap(MAX_LISTED.finds, 256 * KIB))
    pages = Pages([heavy(7000 + n, "k8s-uid:abc") for n in range(2)])
    with pytest.raises(
        errors.MalformedResponse, match="found more than 256 KiB of instances; search stopped"
    ):
        await serving(instances, pages).find_tagged_with_prefix(API, CREDENTIALS, "k8s-")
    one_page = sum(held((item["id"], item["tags"])) for item in pages.page)
    assert (pages.calls - 1) * one_page <= 256 * KIB < pages.calls * one_page


def test_bytes_are_counted_as_python_stores_them() -> None:
    # Four bytes a character past the Basic Multilingual Plane: a flood of emoji tags is not a
    # quarter of its size.
    ascii_, emoji = held((1, ["k8s-" + "x" * 1000])), held((1, ["k8s-" + "\U0001f600" * 1000]))
    assert emoji - ascii_ >= 3000


def test_what_a_failed_search_kept_is_dropped() -> None:
    # The error's traceback holds these lists while the caller reports it.
    found: list[tuple[int, list[str]]] = [(1, ["k8s-uid:a"])]
    page = [(2, ["k8s-uid:" + "b" * 2000])]
    with pytest.raises(errors.MalformedResponse, match="found more than 1 KiB of instances"):
        gathered(found, page, Cap(10, 1024))
    assert found == []
    assert page == []


def test_a_legitimate_listing_with_the_longest_marks_fits() -> None:
    # 50 pages of 200 instances, each with the longest uid, object and claim tags the API allows
    # (names of 253, namespaces and a cluster name of 63 characters).
    namespace, name, cluster = "n" * 63, "o" * 253, "c" * 63
    found: list[tuple[int, list[str]]] = []
    for page in range(50):
        entries = [
            (
                page * 200 + n,
                [
                    f"k8s-uid:{page * 200 + n:036d}",
                    f"k8s-object:{namespace}/{name}",
                    f"k8s-claim:{cluster}/{namespace}/{name}",
                ],
            )
            for n in range(200)
        ]
        gathered(found, entries, MAX_LISTED)
    assert len(found) == 10_000
