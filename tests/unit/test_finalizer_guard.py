"""The passes' guard for a finalizer kopf lost (kube/finalizers.py, handlers/instances.py).

kopf's own patch failing is hard to provoke on purpose (an operator process met it now and then
in the test of an unparseable spec, now tests/reconciler/test_unparseable_spec.py, when the API
server rebuilt a CRD's storage); here the decision is checked against a stand-in for the API that
records the patch it would send.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

import kopf

from connector_operator.api.names import FINALIZER
from connector_operator.engine.objects import Tracked, tracked_from
from connector_operator.kube.api import MERGE_PATCH, KubeAPI
from connector_operator.reconciler.instance import FINALIZER_GRACE, _finalized
from connector_operator.reconciler.runtime import Runtime
from connector_operator.settings import Settings
from tests.fixtures.runtime import build_runtime


class RecordingAPI:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, str]] = []

    async def request(self, method: str, path: str, *, body: Any = None, content_type: str = "") -> Any:
        self.requests.append((method, path, body, content_type))
        return {}


KEY = ("sales", "crm")


def tracked(finalizers: list[str], *, age: float, deleting: bool = False) -> Tracked:
    """The object as its passes know it, first seen `age` seconds ago."""
    raw = body(finalizers, deleting)
    record = tracked_from(raw, 60.0)
    record.observe(raw)
    record.born = time.monotonic() - age
    return record


def body(finalizers: list[str], deleting: bool = False) -> kopf.Body:
    meta: dict[str, Any] = {
        "namespace": "sales",
        "name": "crm",
        "resourceVersion": "42",
        "finalizers": finalizers,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return kopf.Body({"metadata": meta, "spec": {}})


def runtime(api: RecordingAPI) -> Runtime:
    return build_runtime(Settings(backoff_base=2.0), api=cast(KubeAPI, api))


async def test_present_or_deleting_needs_nothing() -> None:
    api = RecordingAPI()
    assert await _finalized(runtime(api), KEY, tracked([FINALIZER], age=60)) == math.inf
    assert await _finalized(runtime(api), KEY, tracked([], age=60, deleting=True)) == math.inf
    assert api.requests == []


async def test_missing_is_given_kopf_s_grace_then_added_beside_the_others() -> None:
    api = RecordingAPI()
    wait = await _finalized(runtime(api), KEY, tracked(["example.com/keep"], age=4.0))
    assert FINALIZER_GRACE - 4.5 < wait <= FINALIZER_GRACE - 4.0
    assert api.requests == []
    assert (
        await _finalized(runtime(api), KEY, tracked(["example.com/keep"], age=FINALIZER_GRACE + 1))
        == math.inf
    )
    [(method, path, patch, content_type)] = api.requests
    assert (method, content_type) == ("PATCH", MERGE_PATCH)
    assert path == "/apis/openconnectors.io/v1beta1/namespaces/sales/connectorinstances/crm"
    # The whole list, guarded by the version it was read at: nobody else's finalizer is lost.
    assert patch == {"metadata": {"finalizers": ["example.com/keep", FINALIZER], "resourceVersion": "42"}}


def test_between_passes_the_state_and_spec_are_kept_serialized_and_come_back_whole() -> None:
    spec = {"connectorKey": "closeio", "configuration": {"username": "u"}}
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "message": "",
        "lastTransitionTime": "x",
    }
    status = {"instanceID": 7, "conditions": [ready]}
    raw = kopf.Body({**body([FINALIZER]), "spec": spec, "status": status})
    record = tracked_from(raw, 60.0)
    record.observe(raw)
    assert record.spec == spec
    state = record.thaw()
    assert state.status.instance_id == 7
    assert state.ready
    state.stalled_on = (3, "judged")
    state.events.append(("Normal", "Created", "made"))
    record.park()
    again = record.thaw()
    assert again.stalled_on == (3, "judged")
    assert again.status == state.status
    assert again.written == again.status
    assert again.events == [("Normal", "Created", "made")]
