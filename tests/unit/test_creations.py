"""`engine.creations.Creations`: what stands for the search before each create (issue 13).

A create needs a search only when its answer may have been lost; otherwise what this process
POSTed, and one listing per endpoint, say whether the object has an instance already. The real
platform path (kill mid-burst, lost answers) is in tests/integration/test_resilience.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from connector_operator.api.spec import parse_spec
from connector_operator.domain.accounts import AccountKey, AccountKind
from connector_operator.domain.desired import Keyed, desired_instance
from connector_operator.domain.transition import Facts, parse_status
from connector_operator.engine import creations as creations_module
from connector_operator.engine.creations import Creations, endpoint_key, owned_by_uid
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials, Instance, InstancesClient
from connector_operator.reconciler.remote import RemotePass
from connector_operator.reconciler.runtime import Runtime
from tests.fixtures.runtime import build_runtime


def instance(id_: int, *tags: str) -> tuple[int, list[str]]:
    """As the client's listing gives it: the id and the identity tags."""
    return id_, [t for t in tags if t.startswith("k8s-uid:")]


class Lister:
    """Counts its calls; answers `listed`, or raises `error`; waits for `gate` when given."""

    def __init__(self, *listed: tuple[int, list[str]], error: Exception | None = None) -> None:
        self.listed, self.error, self.calls = list(listed), error, 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> list[tuple[int, list[str]]]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.listed


def test_the_listing_maps_each_instance_to_its_first_uid() -> None:
    listed = [instance(1, "k8s-uid:a", "k8s-object:ns/a"), instance(2, "crm"), instance(3, "k8s-uid:a")]
    assert owned_by_uid(listed) == {"a": [1, 3]}


def test_an_endpoint_key_holds_no_secret() -> None:
    key = endpoint_key("https://api.example", Credentials("user-secret-1", "org-secret-1"))
    assert "secret" not in key
    assert key != endpoint_key("https://api.example", Credentials("user-secret-2", "org-secret-1"))


async def test_one_listing_answers_every_create_of_an_endpoint() -> None:
    creations, lister = Creations(), Lister(instance(7, "k8s-uid:old"))
    lister.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(creations.known(uid, "e", lister)) for uid in ("old", "new", "other")]
    await asyncio.sleep(0)
    lister.gate.set()
    assert await asyncio.gather(*waiting) == [[(7, False)], [], []]
    assert lister.calls == 1
    assert await creations.known("later", "e", lister) == []
    assert lister.calls == 1
    assert await creations.known("x", "another endpoint", lister) == []
    assert lister.calls == 2


async def test_what_this_process_posted_is_known_and_a_lost_answer_means_search() -> None:
    creations, lister = Creations(), Lister()
    creations.posted("a", 11)
    assert await creations.known("a", "e", lister) == [(11, False)]  # the status write failed: no second POST
    creations.recorded("a", 10)  # status still holds an older instance: 11 stays remembered
    assert await creations.known("a", "e", lister) == [(11, False)]
    creations.recorded("a", 11)
    assert await creations.known("a", "e", lister) == []
    creations.uncertain.add("b")
    creations.recorded("b", 5)  # status holding some id says nothing of a lost answer
    assert await creations.known("b", "e", lister) is None  # search by tag
    creations.searched("b")
    assert await creations.known("b", "e", lister) == []
    creations.posted("c", 7)
    creations.uncertain.add("d")
    creations.forget("c")
    creations.forget("d")
    assert (creations.created, creations.uncertain) == ({}, set())


async def test_a_failed_listing_fails_its_passes_then_creates_search_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creations, lister = Creations(), Lister(error=errors.ServerError(503, "down"))
    waiting = [creations.known(uid, "e", lister) for uid in ("a", "b")]
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert [type(r) for r in results] == [errors.ServerError, errors.ServerError]  # one listing, both fail
    assert lister.calls == 1
    assert await creations.known("a", "e", lister) is None  # search first, the old way
    lister.error, lister.listed = None, [instance(3, "k8s-uid:a")]
    now = time.monotonic()
    monkeypatch.setattr(creations_module.time, "monotonic", lambda: now + creations_module.LISTING_RETRY)
    assert await creations.known("a", "e", lister) == [(3, False)]  # listed again once the while is over
    assert lister.calls == 2


async def test_a_gone_instance_makes_the_next_create_search_and_a_pause_forgets_the_listings() -> None:
    """Review of issue 13, HIGH 1 and MEDIUM 3: a known instance that turns out to be gone (a
    recreate, a 404 on the adopting PUT) must not lead straight to a POST: the platform may lag
    or lie, and an earlier POST's answer may have been lost."""
    creations, lister = Creations(), Lister(instance(3, "k8s-uid:a"))
    assert await creations.known("a", "e", lister) == [(3, False)]
    creations.gone("a", "e", 3)
    assert await creations.known("a", "e", lister) is None  # search
    creations.searched("a")
    assert await creations.known("a", "e", lister) == []  # and the listing forgot it
    creations.forget_listings()
    assert await creations.known("b", "e", lister) == []  # listed again
    assert lister.calls == 2


async def test_a_listing_is_taken_again_after_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    creations, lister = Creations(), Lister(instance(3, "k8s-uid:a"))
    assert await creations.known("a", "e", lister) == [(3, False)]
    now = time.monotonic()
    monkeypatch.setattr(creations_module.time, "monotonic", lambda: now + creations_module.LISTING_LIFETIME)
    lister.listed = []
    assert await creations.known("a", "e", lister) == []
    assert lister.calls == 2


def test_a_flood_of_identity_tags_fails_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(creations_module, "MAX_OWNED", 3)
    with pytest.raises(creations_module.ListingTooLarge):
        owned_by_uid([instance(n, f"k8s-uid:u{n}") for n in range(4)])


async def test_a_cancelled_create_leaves_the_listing_to_the_others() -> None:
    creations, lister = Creations(), Lister(instance(3, "k8s-uid:b"))
    lister.gate = asyncio.Event()
    first = asyncio.ensure_future(creations.known("a", "e", lister))
    second = asyncio.ensure_future(creations.known("b", "e", lister))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    lister.gate.set()
    assert await second == [(3, False)]
    assert lister.calls == 1


class Platform:
    """A stand-in for the platform client at the seams `_create_or_adopt` uses: the instance a
    lost POST made, found by a search; the adoption PUT failing once with a 504."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def find_by_tag(self, url: str, credentials: object, tag: str, **__: object) -> list[Instance]:
        self.calls.append("search")
        return [Instance(400220, "tok", tags=(tag,))]  # the client keeps only what carries the tag

    async def find_tagged_with_prefix(self, *_: object, **__: object) -> list[tuple[int, list[str]]]:
        self.calls.append("listing")
        return []  # taken before the lost POST: it does not show the instance

    async def update(
        self, url: str, credentials: object, instance_id: int, *_: object, **__: object
    ) -> Instance:
        self.calls.append(f"PUT {instance_id}")
        if self.calls.count(f"PUT {instance_id}") == 1:
            raise errors.ServerError(504, "Gateway Timeout")
        return Instance(instance_id, "tok")

    async def create(self, *_: object, **__: object) -> Instance:
        self.calls.append("POST")
        return Instance(400221, "tok2")


def creating(platform: object, creations: Creations, namespace: str, name: str, uid: str) -> RemotePass:
    """A pass of a new object (no status) with a stand-in runtime, at `_create_or_adopt`."""
    spec = parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}})
    return RemotePass(
        rt=stand_in(platform, creations),
        target=Target(namespace, name, uid, 1, {}),
        spec=spec,
        state=ObjectState(status=parse_status({})),
        cache={},
        api_url="https://api.example/elements/api-v2",
        credentials=Credentials("u", "o"),
        desired=desired_instance(spec, namespace=namespace, name=name, uid=uid, configuration={}),
        keyed=Keyed(b"k" * 32, uid),
        digest="d",
        attempt="a",
        facts=Facts(),
    )


def stand_in(platform: object, creations: Creations) -> Runtime:
    """The parts of a Runtime `_create_or_adopt` reads (a real one needs a whole operator)."""
    return build_runtime(instances=cast(InstancesClient, platform), creations=creations)


async def test_a_found_instance_is_not_forgotten_when_its_adoption_put_fails() -> None:
    # Found by `make chaos`: a lost POST, then a search found the instance, then the adoption PUT
    # failed; the next pass trusted a listing older than the instance and POSTed a second one.
    platform = Platform()
    creations = Creations()
    uid = "6907d5ce-0bd2-485f-95a5-6f3ab73b9095"
    creations.uncertain.add(uid)  # the POST's answer was lost
    remote = creating(platform, creations, "chaos-2", "ci-00222", uid)
    with pytest.raises(errors.ServerError):
        await remote._create_or_adopt()
    adopted = await remote._create_or_adopt()  # the next pass
    assert adopted.id == 400220
    assert "POST" not in platform.calls
    assert platform.calls == ["search", "PUT 400220", "PUT 400220"]


class RefusedAnswerPlatform(Platform):
    """The POST made an instance, but its answer is one the client refuses (issue 18: an id
    written `400220.0` was such an answer before)."""

    async def create(self, *_: object, **__: object) -> Instance:
        self.calls.append("POST")
        raise errors.MalformedResponse(200, "the platform answered with an instance without an integer id")

    async def update(
        self, url: str, credentials: object, instance_id: int, *_: object, **__: object
    ) -> Instance:
        self.calls.append(f"PUT {instance_id}")
        return Instance(instance_id, "tok")


@pytest.mark.parametrize("refused", [errors.MalformedResponse, errors.ResponseTooLarge])
def test_an_answer_the_client_refuses_may_follow_a_create(refused: type[errors.APIError]) -> None:
    assert not issubclass(refused, creations_module.NOT_CREATED)


async def test_a_refused_create_answer_makes_the_object_uncertain_so_the_next_attempt_searches() -> None:
    platform, creations = RefusedAnswerPlatform(), Creations()
    uid = "0d1b5a64-2f0e-4d8e-8f5e-3c1f4f1b7a21"
    remote = creating(platform, creations, "ns", "crm", uid)
    with pytest.raises(errors.MalformedResponse):
        await remote._create_or_adopt()
    assert uid in creations.uncertain
    adopted = await remote._create_or_adopt()  # the next attempt: a search finds what the POST made
    assert adopted.id == 400220
    assert platform.calls == ["listing", "POST", "search", "PUT 400220"]


async def test_a_slow_listing_holds_a_create_for_at_most_its_wait_then_it_searches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tenant-findings N10: every namespace's creates at a shared account waited for one listing
    without a deadline. A create now searches after `LISTING_WAIT`; the listing goes on."""
    monkeypatch.setattr(creations_module, "LISTING_WAIT", 0.05)
    creations, lister = Creations(), Lister(instance(7, "k8s-uid:old"))
    lister.gate = asyncio.Event()
    async with asyncio.timeout(2):
        assert await creations.known("new", "e", lister) is None  # search
    lister.gate.set()
    assert await creations.known("old", "e", lister) == [(7, False)]
    assert lister.calls == 1


class ListingPlatform(Platform):
    """Records the namespace each call was made for."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: dict[str, str | None] = {}

    async def find_tagged_with_prefix(self, *_: object, **how: object) -> list[tuple[int, list[str]]]:
        self.calls.append("listing")
        self.namespaces["listing"] = cast(str | None, how.get("namespace"))
        return []

    async def create(self, *_: object, **how: object) -> Instance:
        self.namespaces["POST"] = cast(str | None, how.get("namespace"))
        return Instance(400221, "tok2")


async def test_a_cluster_account_s_listing_is_the_operator_s_call_not_the_first_caller_s() -> None:
    """Tenant-findings N10: the listing every namespace's creates wait for ran in the namespace of
    the object that asked first, behind whatever that namespace had queued. An endpoint of the
    namespace's own credentials stays its own (its hosts and Secrets are hers to multiply)."""
    uid = "3f0c9a55-3b0b-4b8e-9a49-3a1f0d0b7c11"
    shared = ListingPlatform()
    remote = creating(shared, Creations(), "team-a", "first", uid)
    remote.account = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    await remote._create_or_adopt()
    assert shared.namespaces == {"listing": None, "POST": "team-a"}
    own = ListingPlatform()
    await creating(own, Creations(), "team-a", "first", uid)._create_or_adopt()
    assert own.namespaces == {"listing": "team-a", "POST": "team-a"}


async def test_an_own_secret_with_a_cluster_account_s_credentials_does_not_take_its_listing() -> None:
    """Review: the listing was keyed by URL and credentials only; an object of a namespace's own
    Secret holding a cluster account's credentials (exported through allowSecretExport), creating
    first, took the account's listing into its namespace and past the account's gate."""
    platform, creations = ListingPlatform(), Creations()
    own = creating(platform, creations, "team-a", "own", "0b7d8c1e-2f3a-4b5c-9d6e-7f8091a2b3c4")
    await own._create_or_adopt()
    shared = creating(platform, creations, "team-b", "shared", "1c8e9d2f-3a4b-4c5d-8e7f-8091a2b3c4d5")
    shared.account = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    await shared._create_or_adopt()
    assert platform.calls.count("listing") == 2
    assert platform.namespaces["listing"] is None  # the account's own, the operator's call
