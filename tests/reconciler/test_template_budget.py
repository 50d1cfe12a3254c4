"""Templates cost CPU once per generation, within a budget (issue 20, tenant-findings N2).

Every pass compiled `spec.tokenSecret.template` again, behind one global cache that 17 objects with
16 maximal keys defeated: each pass then blocked the event loop for about 1.3 s, at every resync and
every reconcile annotation. Now a generation is compiled once (its verdict kept with the object),
again only to render a changed token, and a set that costs more CPU than its budget stalls with
InvalidSpec until the spec changes. The compiles are counted at `sandbox.compile_templates`, which
both the old and the new code call for every compile.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.domain import sandbox, template
from tests.integration.support import closeio_spec, ready_inputs, remote, secret_data
from tests.reconciler.kopfstandin import Operator

TEMPLATE = {"data": {"AUTH": "Element {{ token }}", "ID": "{{ instanceID }}"}}
RESYNC = {"resync_interval": 600}  # no periodic check: only the requested ones


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many keys each compile asked for, in order."""
    counted: list[int] = []
    real = sandbox.compile_templates

    def counting(data: Any, **kwargs: Any) -> Any:
        counted.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(sandbox, "compile_templates", counting)
    return counted


def request_check(op: Operator, name: str, at: str) -> None:
    """`openconnectors.io/reconcile-requested-at`: a platform check of the object now."""
    op.annotate(name, {"openconnectors.io/reconcile-requested-at": at})


async def checked(op: Operator, name: str, at: str) -> None:
    request_check(op, name, at)
    await op.until(
        name, lambda obj: obj["status"].get("lastHandledReconcileAt") == at, passes=1, what=f"check {at}"
    )


@pytest.mark.settings(**RESYNC)
async def test_passes_of_one_generation_compile_once_and_a_new_token_or_generation_once_more(
    operator: Operator, compiles: list[int]
) -> None:
    op = operator
    obj = await op.create_ready(tokenSecret={"name": "crm-token", "template": TEMPLATE})
    assert compiles == [2]  # the first pass checks (and renders) the templates
    # Passes of the same generation: platform checks on request (each exports the token), and
    # plain passes. The Secret is as the last rendering made it: nothing is compiled.
    for at in ("1", "2", "3"):
        await checked(op, "crm", at)
    for _ in range(3):
        await op.run("crm")
    assert compiles == [2]
    token = remote(op.simulator, obj["status"]["instanceID"])["token"]
    assert (secret_data(op.core, op.namespace, "crm-token") or {})["AUTH"] == f"Element {token}"

    # A new token must be rendered: one compile, and the Secret follows.
    new_token = op.simulator.control.rotate_token(obj["status"]["instanceID"])
    await checked(op, "crm", "4")
    assert (secret_data(op.core, op.namespace, "crm-token") or {})["AUTH"] == f"Element {new_token}"
    assert compiles == [2, 2]
    await checked(op, "crm", "5")
    assert compiles == [2, 2]

    # A new generation (any spec change) is checked again, once.
    op.instances.patch_spec("crm", {"tags": ["crm", "v2"]})
    await op.until("crm", lambda o: o["status"].get("observedGeneration") == 2, passes=1, what="gen 2")
    assert compiles == [2, 2, 2]
    await checked(op, "crm", "6")
    await op.run("crm")
    assert compiles == [2, 2, 2]
    assert op.instances.condition("crm", "Ready")["status"] == "True"


@pytest.mark.settings(**RESYNC)
async def test_templates_over_the_cpu_budget_stall_and_are_not_compiled_again_until_the_spec_changes(
    operator: Operator, compiles: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    op = operator
    # Any compile costs more than this (raising=False: the code before had no budget to set).
    monkeypatch.setattr(template, "TEMPLATE_CPU_SECONDS", 1e-9, raising=False)
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(tokenSecret={"template": TEMPLATE}))
    stalled = await op.condition("crm", "Stalled", "True", reason="InvalidSpec", passes=1)
    assert "spec.tokenSecret.template" in stalled["message"]
    assert "ms of CPU" in stalled["message"]
    assert compiles == [2]
    assert op.simulator.control.counters().get("POST /instances", 0) == 0

    # Not retried for this generation: not on a resync, not on the reconcile annotation, not
    # even once the budget would allow it (the verdict is the generation's).
    monkeypatch.setattr(template, "TEMPLATE_CPU_SECONDS", 0.25, raising=False)
    key = op.key("crm")
    for at in ("1", "2"):
        request_check(op, "crm", at)
        await op.run("crm")
        op.runtime.tracked[key].next_check = 0.0  # a resync is due
        await op.run("crm")
    assert compiles == [2]
    assert op.instances.condition("crm", "Stalled")["reason"] == "InvalidSpec"
    assert op.simulator.control.counters().get("POST /instances", 0) == 0

    # A new generation is checked again: within the budget, it goes on.
    op.instances.patch_spec("crm", {"tags": ["crm", "v2"]})
    await op.ready("crm", passes=1)
    assert compiles == [2, 2]


@pytest.mark.settings(**RESYNC)
async def test_a_rendering_over_the_budget_stalls_and_the_next_passes_compile_nothing(
    operator: Operator, compiles: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget holds when a later pass must render (a new token): compiling again and rendering
    past it stalls the object, and that verdict, too, stands for the generation."""
    op = operator
    obj = await op.create_ready(tokenSecret={"name": "crm-token", "template": TEMPLATE})
    assert compiles == [2]
    monkeypatch.setattr(template, "TEMPLATE_CPU_SECONDS", 1e-9, raising=False)
    op.simulator.control.rotate_token(obj["status"]["instanceID"])
    request_check(op, "crm", "1")
    stalled = await op.condition("crm", "Stalled", "True", reason="InvalidSpec", passes=1)
    assert "ms of CPU" in stalled["message"]
    assert compiles == [2, 2]
    for at in ("2", "3"):
        request_check(op, "crm", at)
        await op.run("crm")
    assert compiles == [2, 2]
    assert op.instances.condition("crm", "Stalled")["reason"] == "InvalidSpec"
