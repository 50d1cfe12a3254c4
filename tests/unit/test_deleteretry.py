"""`engine.deleteretry.DeleteRetries`: the delete handler's own backoff count, deletions woken when
their platform answers again (once per backoff period), and the first sight after a restart.

The status writer here only records the patches: what a patch does to kopf is covered by the
integration tests (test_lifecycle_safety.py, test_recovery.py) on a real API server, and the delete
handler's attempts by tests/reconciler/test_deletion.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.outcome import Backoff
from connector_operator.engine.deleteretry import DELETE_HANDLER, DeleteRetries
from connector_operator.engine.retries import Retries
from connector_operator.kube.status import StatusWriter
from connector_operator.openconnectors.client import Credentials, host_of

KEY = ("team", "crm")
OTHER = ("team", "erp")
PLATFORM = (host_of("https://platform.test/elements/api-v2"), Credentials("u", "o"))
BACKOFF = Backoff(base=2.0, cap=300.0)
RUN_NOW = {"kopf": {"progress": {DELETE_HANDLER: {"delayed": None}}}}

UNAVAILABLE = outcomes.retrying(Reason.API_UNAVAILABLE, "503", ready=False)
RATE_LIMITED = outcomes.retrying(Reason.RATE_LIMITED, "429", ready=False, retry_after=1.0)
BLOCKED = outcomes.stalled(Reason.DELETION_BLOCKED, "no key")


class Patches:
    def __init__(self) -> None:
        self.made: list[tuple[str, str, Mapping[str, Any]]] = []

    async def patch(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        self.made.append((namespace, name, status))
        return True


def writer(patches: Patches) -> StatusWriter:
    return cast(StatusWriter, patches)


def waiting_body(generation: int = 1, judged: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "conditions": [{"type": "Ready", "observedGeneration": judged}],
            "kopf": {"progress": {DELETE_HANDLER: {"delayed": "2030-01-01T00:00:00.000000"}}},
        },
    }


def test_429s_waited_out_do_not_grow_the_backoff() -> None:
    retries = DeleteRetries(Retries(BACKOFF))
    for _ in range(8):
        assert retries.failed(KEY, RATE_LIMITED) == 2.0  # Retry-After 1, floored at the base
    # The reproduction of issue 10: after eight 429s, one 503 waits as long as a first failure.
    assert 1.0 <= retries.failed(KEY, UNAVAILABLE) <= 2.0
    assert 2.0 <= retries.failed(KEY, UNAVAILABLE) <= 4.0
    assert 4.0 <= retries.failed(KEY, BLOCKED) <= 8.0  # real failures do grow it


def test_a_success_forgets_the_count() -> None:
    retries = DeleteRetries(Retries(BACKOFF))
    for _ in range(5):
        retries.failed(KEY, UNAVAILABLE)
    retries.succeeded(KEY)
    assert retries.failed(KEY, UNAVAILABLE) <= 2.0
    retries.forget(KEY)
    assert retries.retries.attempts(KEY) == 0


async def test_a_success_on_the_platform_runs_the_deletions_waiting_for_it_once() -> None:
    retries, patches = DeleteRetries(Retries(BACKOFF)), Patches()
    retries.failed(KEY, UNAVAILABLE, PLATFORM)
    retries.failed(OTHER, UNAVAILABLE, (host_of("https://elsewhere.test/elements/api-v2"), PLATFORM[1]))
    retries.platform_answered(writer(patches), PLATFORM)
    await asyncio.gather(*retries._tasks)
    assert patches.made == [("team", "crm", RUN_NOW)]
    retries.platform_answered(writer(patches), PLATFORM)  # nobody waits any more
    await asyncio.gather(*retries._tasks)
    assert len(patches.made) == 1


async def test_an_early_run_that_fails_waits_out_its_delay_before_it_can_be_woken_again() -> None:
    retries, patches = DeleteRetries(Retries(BACKOFF)), Patches()
    retries.failed(KEY, UNAVAILABLE, PLATFORM)
    retries.platform_answered(writer(patches), PLATFORM)
    retries.attempting(KEY)
    retries.failed(KEY, UNAVAILABLE, PLATFORM)  # the early run failed again
    retries.platform_answered(writer(patches), PLATFORM)
    await asyncio.gather(*retries._tasks)
    assert len(patches.made) == 1  # not woken at the pace of other objects' successes
    retries.attempting(KEY)  # the run its own delay brought
    retries.failed(KEY, UNAVAILABLE, PLATFORM)
    retries.platform_answered(writer(patches), PLATFORM)
    await asyncio.gather(*retries._tasks)
    assert len(patches.made) == 2


async def test_only_transient_platform_failures_wait_for_the_platform() -> None:
    retries, patches = DeleteRetries(Retries(BACKOFF)), Patches()
    retries.failed(KEY, BLOCKED, PLATFORM)  # 401, 400: another answer changes nothing
    retries.failed(OTHER, RATE_LIMITED, PLATFORM)  # already waits only as long as asked
    retries.platform_answered(writer(patches), PLATFORM)
    assert retries._tasks == set()
    assert patches.made == []


async def test_a_running_deletion_waits_for_nothing_and_leaves_nothing_behind() -> None:
    retries, patches = DeleteRetries(Retries(BACKOFF)), Patches()
    retries.failed(KEY, UNAVAILABLE, PLATFORM)
    retries.attempting(KEY)  # its own success must not wake itself in the middle of its run
    retries.platform_answered(writer(patches), PLATFORM)
    assert patches.made == []
    assert retries.waiting == {}


async def test_a_process_runs_a_waiting_deletion_once_at_first_sight() -> None:
    retries, patches = DeleteRetries(Retries(BACKOFF)), Patches()
    assert await retries.on_event(writer(patches), KEY, waiting_body())
    assert not await retries.on_event(writer(patches), KEY, waiting_body())
    assert await retries.on_event(writer(patches), KEY, waiting_body(generation=2))  # a spec change
    assert not await retries.on_event(writer(patches), OTHER, {"metadata": {"generation": 1}})  # no delay
    assert len(patches.made) == 2
