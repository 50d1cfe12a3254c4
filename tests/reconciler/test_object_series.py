"""The per-object series as the kopf shell's events feed them, in this process (the operator-process
tests are tests/integration/test_object_metrics.py): a copy of the operator outranked by another
(peering) sees no events, so it must export none of what it saw last; the late DELETED event of
an object made again under its name must not take the new object's series."""

from __future__ import annotations

from connector_operator import metrics
from connector_operator.reconciler import instance
from tests.integration.support import closeio_spec, ready_inputs
from tests.reconciler.kopfstandin import Operator


def reasons(op: Operator, name: str) -> dict[str, str]:
    row = metrics.SERIES.instances.get(op.key(name))
    return {type_: reason for type_, _, reason in row.conditions} if row is not None else {}


async def test_an_outranked_copy_exports_no_object_until_it_sees_them_again(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    await op.ready("crm", passes=1)
    await op.event("crm")  # the event of the status the pass wrote
    assert reasons(op, "crm")["Ready"] == "Available"

    instance.outranked(op.runtime, True)
    assert op.key("crm") not in metrics.SERIES.instances  # the other copy's to export now
    instance.outranked(op.runtime, False)
    await op.event("crm")  # kopf lists every object again when it resumes
    assert reasons(op, "crm")["Ready"] == "Available"


async def test_a_late_deleted_event_of_the_object_before_keeps_the_new_ones_series(
    operator: Operator,
) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    await op.ready("crm", passes=1)
    old = op.deleted["crm"]
    await op.delete("crm")
    op.instances.create("crm", closeio_spec())
    await op.event("crm")  # the new object, first seen
    await op.late_deleted(old)
    assert op.key("crm") in metrics.SERIES.instances
