"""The GitOps fixtures write status exactly as the operator does.

tests/gitops/objects.py builds its objects with the operator's pure functions; this checks that its
two writers match the operator's own: `reconciled()` against `handlers.reconcile._finish` (all four
conditions, observedGeneration only for a handled outcome, lastTransitionTime kept while a status
holds) and `deletion_reported()` against `handlers.deletion._report` (conditions only). The
operator's writers run with a recording stand-in for the status client and a fixed clock.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from connector_operator.domain.outcome import Outcome, success
from connector_operator.handlers import deletion, reconcile
from tests.gitops import objects

NOW = "2026-03-02T11:11:11Z"
NAMESPACE, NAME = objects.NAMESPACE, objects.NAME


class RecordingStatus:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    async def patch(self, namespace: str, name: str, changed: dict[str, Any]) -> bool:
        self.patches.append((namespace, name, copy.deepcopy(changed)))
        return True


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "utcnow", lambda: NOW)
    monkeypatch.setattr(deletion, "utcnow", lambda: NOW)


async def operator_pass(obj: objects.Object, outcome: Outcome) -> dict[str, Any]:
    """The status the operator's `_finish` keeps after a pass with `outcome` on `obj`."""
    runtime: Any = SimpleNamespace(status=RecordingStatus())
    meta = obj["metadata"]
    target = reconcile.Target(meta["namespace"], meta["name"], meta["uid"], meta["generation"], obj["spec"])
    state = reconcile.ObjectState(status=copy.deepcopy(obj.get("status") or {}))
    await reconcile._finish(runtime, target, state, outcome, {})
    return state.status


PASSES = {
    "success on a new object": (objects.created, success),
    "waiting for a Secret on a new object": (
        objects.created,
        lambda: objects.waiting_for_secret(ready=False),
    ),
    "API unavailable after a spec change": (
        lambda: objects.spec_changed(objects.state("ready")),
        lambda: objects.api_unavailable(ready=True),
    ),
    "rate limited on resync": (lambda: objects.state("ready"), lambda: objects.rate_limited(ready=True)),
    "credentials rejected after a spec change": (
        lambda: objects.spec_changed(objects.state("ready")),
        lambda: objects.credentials_rejected(ready=True),
    ),
    "recovered after retrying": (
        lambda: objects.state("api_unavailable_after_update_ready_true"),
        success,
    ),
}


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize("case", PASSES)
async def test_reconciled_writes_what_the_operator_writes(case: str) -> None:
    make_object, make_outcome = PASSES[case]
    obj, outcome = make_object(), make_outcome()
    assert objects.reconciled(obj, outcome, NOW)["status"] == await operator_pass(obj, outcome)


@pytest.mark.usefixtures("fixed_clock")
@pytest.mark.parametrize(
    "make_outcome",
    [
        objects.deletion_blocked,
        objects.deletion_credentials_rejected,
        lambda: objects.api_unavailable(ready=False),
    ],
    ids=["deletion blocked", "credentials rejected", "API unavailable"],
)
async def test_deletion_reported_writes_what_the_deletion_handler_writes(make_outcome: Any) -> None:
    obj = objects.deletion_requested(objects.state("ready"))
    outcome = make_outcome()
    status = RecordingStatus()
    runtime: Any = SimpleNamespace(status=status)
    meta = obj["metadata"]
    await deletion._report(runtime, NAMESPACE, NAME, meta["generation"], obj["status"], outcome)
    expected = objects.deletion_reported(obj, outcome, NOW)["status"]
    assert status.patches == [(NAMESPACE, NAME, {"conditions": expected["conditions"]})]
    # Only the conditions change: observedGeneration stays at the last reconciled generation,
    # one behind the generation the API server bumped when the deletion started.
    assert expected["observedGeneration"] == obj["status"]["observedGeneration"] == meta["generation"] - 1


def test_every_state_builds_a_fresh_object() -> None:
    for name in objects.STATES:
        first = objects.state(name)
        first["metadata"]["name"] = "changed"
        assert objects.state(name)["metadata"]["name"] == objects.NAME, name
