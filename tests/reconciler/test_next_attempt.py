"""status.nextAttemptAt: when the operator tries again, written with the status of a failed pass
once the attempts are a minute or more apart, and gone once nothing is retried. The shorter waits
are not written (a status write per attempt of a backoff's first seconds, or of the circuit's
waits, would cost more than it tells)."""

from __future__ import annotations

import datetime

import pytest

from tests.integration.support import closeio_spec, ready_inputs
from tests.reconciler.kopfstandin import Operator


def next_attempt(op: Operator) -> datetime.datetime | None:
    raw = ((op.instances.get("crm") or {}).get("status") or {}).get("nextAttemptAt")
    return datetime.datetime.fromisoformat(raw) if raw is not None else None


@pytest.mark.settings(backoff_base=30.0)
async def test_a_retry_a_minute_away_or_more_is_in_status_until_it_succeeds(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.simulator.control.fail_next("POST", 3, status=503)
    op.instances.create("crm", closeio_spec())
    first = await op.run("crm")
    assert first < 60  # the first backoff: up to the base (30 s), not written
    assert next_attempt(op) is None
    second = await op.run("crm")
    third = await op.run("crm")  # doubled twice: 60 to 120 s
    assert second < third
    assert third >= 60
    written = next_attempt(op)
    assert written is not None
    now = datetime.datetime.now(datetime.UTC)
    assert abs((written - now).total_seconds() - third) <= 2  # the very delay the scheduler took
    assert op.instances.condition("crm", "Reconciling")["status"] == "True"

    await op.ready("crm", passes=1)
    assert next_attempt(op) is None  # nothing to retry: removed with the Ready status
