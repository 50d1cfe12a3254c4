"""The GitOps fixtures hold exactly what the operator's writers leave on the API server.

tests/gitops/objects.py builds its objects with the operator's own transition,
`domain.transition.status_after()`. This checks the other half: that the operator's writers,
`reconciler.reconcile.finish` (a pass) and `reconciler.deletion.report` (a failed deletion), write that
transition as a merge patch that leaves the stored status equal to the fixture's, and that the
deletion handler's patch carries the conditions only. They run with a stand-in status client that
applies each merge patch to a stored copy, and a fixed clock.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connector_operator.domain.outcome import Outcome, success
from connector_operator.domain.transition import Facts, parse_status
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.reconciler import deletion, reconcile
from tests.fixtures.runtime import build_runtime
from tests.gitops import objects

NOW = "2026-03-02T11:11:11Z"
NAMESPACE, NAME = objects.NAMESPACE, objects.NAME


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch to the status subresource."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


class StoredStatus:
    """The status subresource: applies merge patches to what it stores, and records them."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = copy.deepcopy(stored)
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    async def patch(self, namespace: str, name: str, changed: dict[str, Any]) -> bool:
        self.patches.append((namespace, name, copy.deepcopy(changed)))
        self.stored = apply_merge_patch(self.stored, changed)
        return True


def runtime_for(obj: objects.Object) -> Any:
    return build_runtime(status=StoredStatus(obj.get("status") or {}), clock=lambda: NOW)


async def operator_pass(obj: objects.Object, outcome: Outcome) -> dict[str, Any]:
    """The stored status after the operator's `finish` ends a pass with `outcome` on `obj`."""
    runtime = runtime_for(obj)
    meta = obj["metadata"]
    target = Target(meta["namespace"], meta["name"], meta["uid"], meta["generation"], obj["spec"])
    state = ObjectState(status=parse_status(obj.get("status")))
    await reconcile.finish(runtime, target, state, outcome, Facts())
    stored: dict[str, Any] = runtime.status.stored
    return stored


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


@pytest.mark.parametrize("case", PASSES)
async def test_reconciled_writes_what_the_operator_writes(case: str) -> None:
    make_object, make_outcome = PASSES[case]
    obj, outcome = make_object(), make_outcome()
    assert objects.reconciled(obj, outcome, NOW)["status"] == await operator_pass(obj, outcome)


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
    runtime = runtime_for(obj)
    status = runtime.status
    meta = obj["metadata"]
    await deletion.report(runtime, NAMESPACE, NAME, meta["generation"], parse_status(obj["status"]), outcome)
    expected = objects.deletion_reported(obj, outcome, NOW)["status"]
    assert status.patches == [(NAMESPACE, NAME, {"conditions": expected["conditions"]})]
    assert status.stored == expected
    # Only the conditions change: observedGeneration stays at the last reconciled generation,
    # one behind the generation the API server bumped when the deletion started.
    assert expected["observedGeneration"] == obj["status"]["observedGeneration"] == meta["generation"] - 1


def test_every_state_builds_a_fresh_object() -> None:
    for name in objects.STATES:
        first = objects.state(name)
        first["metadata"]["name"] = "changed"
        assert objects.state(name)["metadata"]["name"] == objects.NAME, name
