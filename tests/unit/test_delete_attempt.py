"""A Delete's platform work runs apart from kopf's delete handler (engine/deleteretry.py
`Attempt`, reconciler/deletion.py), issue 20: kopf looks at no event of an object while its
handler runs, so a switch to `deletionPolicy: Orphan` waited for every slow call of the Delete
(180 s per run of the handler against a platform trickling a byte every 10 s)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connector_operator.domain.ownership import identity_tag
from connector_operator.openconnectors.client import Instance
from connector_operator.reconciler import deletion
from tests.unit.test_ownership import ME, SPEC, Live, Platform, account, events, runtime


class Hanging(Platform):
    """A platform whose searches never answer (a trickle, as the handler sees it)."""

    def __init__(self, *instances: Instance) -> None:
        super().__init__(*instances)
        self.release = asyncio.Event()

    async def find_by_tag(self, url: str, credentials: Any, tag: str, **how: Any) -> list[Instance]:
        await self.release.wait()
        return await super().find_by_tag(url, credentials, tag, **how)


def deleting(platform: Platform) -> Any:
    """The stand-in runtime of test_ownership, whose Secrets also delete a token Secret."""
    rt = runtime(platform, Live({ME: ("team-a", "crm")}))

    async def delete_token(*_: Any) -> None:
        return None

    rt.secrets.delete_token = delete_token  # type: ignore[method-assign]
    return rt


async def waiting_delete(monkeypatch: pytest.MonkeyPatch) -> tuple[Hanging, Any]:
    """A Delete at a platform that does not answer: its first run of the handler has returned
    `Wait`, and its attempt goes on."""
    monkeypatch.setattr(deletion, "HANDLER_SLICE", 0.05)
    platform = Hanging(Instance(1002, "tok", tags=(identity_tag(ME),)))
    rt = deleting(platform)
    await account(rt, monkeypatch)
    assert isinstance(await deletion.delete(rt, body(2), {}), deletion.Wait)
    return platform, rt


def body(generation: int, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-a",
            "name": "crm",
            "uid": ME,
            "generation": generation,
            "deletionTimestamp": "2026-12-07T08:00:00Z",
        },
        "spec": {**SPEC, **spec},
        "status": {},
    }


async def test_a_slow_delete_returns_the_handler_at_once_and_a_switch_to_orphan_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deletion, "HANDLER_SLICE", 0.05)
    monkeypatch.setattr(deletion, "RELEASE_WAIT", 0.2)
    platform = Hanging(Instance(1002, "tok", tags=(identity_tag(ME),)))
    rt = deleting(platform)
    await account(rt, monkeypatch)

    async with asyncio.timeout(2):
        first = await deletion.delete(rt, body(2), {})
    assert isinstance(first, deletion.Wait)  # the attempt goes on, kopf's worker is free
    assert rt.delete_retries.attempts[("team-a", "crm")].generation == 2

    async with asyncio.timeout(2):  # the release's own calls hang too: released when its time is up
        released = await deletion.delete(rt, body(3, deletionPolicy="Orphan"), {})
    assert [reason for reason, _ in events(released)] == ["Orphaned"]
    assert identity_tag(ME) in events(released)[0][1]  # names the tag left on the instance
    assert ("team-a", "crm") not in rt.delete_retries.attempts
    platform.release.set()
    await asyncio.sleep(0)
    assert platform.writes(1002) == []  # the withdrawn attempt deleted nothing


async def test_an_attempt_that_ends_within_the_slice_is_the_handler_s_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform = Platform(Instance(1002, "tok", tags=(identity_tag(ME),)))
    rt = deleting(platform)
    await account(rt, monkeypatch)
    verdict = await deletion.delete(rt, body(2), {})
    assert [reason for reason, _ in events(verdict)] == ["Deleted"]
    assert platform.writes(1002) == ["DELETE"]
    assert not rt.delete_retries.attempts


async def test_a_later_run_takes_the_outcome_of_an_attempt_that_ended_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    platform, rt = await waiting_delete(monkeypatch)
    attempt = rt.delete_retries.attempts[("team-a", "crm")]
    platform.release.set()
    await asyncio.wait_for(asyncio.shield(attempt.task), 2)
    verdict = await deletion.delete(rt, body(2), {})  # the same generation: joins, then takes it
    assert [reason for reason, _ in events(verdict)] == ["Deleted"]
    assert platform.writes(1002) == ["DELETE"]


async def test_an_object_created_again_under_the_name_never_takes_the_old_one_s_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: attempts were keyed by name and generation; the old object's finalizer removed by
    hand, the new one's deletion (generation 2 too) took its Deleted and left its instance."""
    _platform, rt = await waiting_delete(monkeypatch)
    old = rt.delete_retries.attempts[("team-a", "crm")]
    again = body(2)
    again["metadata"]["uid"] = "5c1b0a2e-9d7f-4b3a-8e6d-2f4c1a9b7e30"
    assert isinstance(await deletion.delete(rt, again, {}), deletion.Wait)
    assert old.task.cancelled() or old.task.cancelling()
    assert rt.delete_retries.attempts[("team-a", "crm")].uid == again["metadata"]["uid"]
    rt.delete_retries.gone(("team-a", "crm"), ME)  # the old one's DELETED, late: not the new one's
    assert ("team-a", "crm") in rt.delete_retries.attempts


async def test_a_stopping_operator_ends_its_attempts_before_closing_the_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _platform, rt = await waiting_delete(monkeypatch)
    attempt = rt.delete_retries.attempts[("team-a", "crm")]
    async with asyncio.timeout(1):
        await rt.delete_retries.close()
    assert attempt.task.cancelled()
    assert not rt.delete_retries.attempts
