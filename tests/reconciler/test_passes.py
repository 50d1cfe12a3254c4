"""`run_pass` (reconciler/instance.py): when each object's next pass is due, as the scheduler
takes it from the pass. A settled object waits for its resync; a failure backs off and grows the
wait; a wait the platform asks for (429 with Retry-After) is that wait and grows nothing; a
success forgets the failures (engine/retries.py)."""

from __future__ import annotations

import math

from tests.integration.support import closeio_spec, ready_inputs
from tests.reconciler.kopfstandin import Operator


async def test_a_settled_object_is_looked_at_again_after_its_resync(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(resyncInterval="5m"))
    delay = await op.run("crm")
    assert op.instances.condition("crm", "Ready")["status"] == "True"
    assert 0.9 * 300 - 1 <= delay <= 1.1 * 300  # the resync, spread by 10 %
    again = await op.run("crm")  # woken early (nothing changed): the resync stays where it was
    assert again <= delay
    assert op.simulator.control.counters().get("POST /instances") == 1


async def test_failures_back_off_and_a_wait_asked_for_grows_nothing(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.simulator.control.fail_next("POST", 2, status=503)
    op.instances.create("crm", closeio_spec())
    first = await op.run("crm")
    second = await op.run("crm")
    base = op.runtime.settings.backoff_base
    assert base / 2 <= first <= base  # the first failure: up to the base
    assert base <= second <= 2 * base  # the second: doubled
    assert op.runtime.retries.attempts(op.key("crm")) == 2
    op.simulator.control.rate_limit_next("POST", 1, retry_after=1)
    asked = await op.run("crm")
    assert asked == base  # Retry-After 1, floored at the base: the platform's wait, not ours
    assert op.runtime.retries.attempts(op.key("crm")) == 2  # no attempt of ours
    await op.ready("crm", passes=1)
    assert op.runtime.retries.attempts(op.key("crm")) == 0  # a success forgets them


async def test_a_deleted_object_has_no_next_pass(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    await op.ready("crm", passes=1)
    assert await op.delete("crm") is None
    assert op.instances.get("crm") is None
    assert await op.run("crm") == math.inf
    assert op.key("crm") not in op.runtime.tracked


async def test_after_a_peering_pause_the_failures_counted_are_the_other_copys_not_ours(
    operator: Operator,
) -> None:
    """Passes go on from the status another copy left (`outranked` marks every record for a
    reseed): the backoff this copy counted before the pause is forgotten with its memory."""
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.simulator.control.fail_next("POST", 3, status=503)
    op.instances.create("crm", closeio_spec())
    await op.run("crm")
    await op.run("crm")
    assert op.runtime.retries.attempts(op.key("crm")) == 2
    op.runtime.tracked[op.key("crm")].reseed = True  # what `outranked` leaves on every record
    delay = await op.run("crm")  # reseeded from the stored status, then it fails once more
    assert not op.runtime.tracked[op.key("crm")].reseed
    assert op.runtime.retries.attempts(op.key("crm")) == 1  # counted afresh, not a third
    assert delay <= op.runtime.settings.backoff_base
