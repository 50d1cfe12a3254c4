"""status.nextAttemptAt: when the operator tries again, written with the status of a failed pass
once the attempts are a minute or more apart, and gone once nothing is retried. The shorter waits
are not written (a status write per attempt of a backoff's first seconds, or of the circuit's
waits, would cost more than it tells)."""

from __future__ import annotations

import datetime

import pytest

from tests.integration.support import account_secret, closeio_spec, ready_inputs
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


@pytest.mark.settings(backoff_base=60.0, backoff_cap=120.0)
async def test_at_the_backoffs_cap_the_time_written_stays_no_write_per_attempt(operator: Operator) -> None:
    """An object waiting for hours (here for a Secret, whose message does not change) must not
    cost a status write per attempt: once the backoff is at its cap, a pass whose status would
    change only in nextAttemptAt writes nothing. (A failure whose message changes, a platform
    error quoting its request ID, writes anyway, and the time comes with it.)"""
    op = operator
    account_secret(op.core, op.namespace, op.simulator)  # the configuration's Secret is missing
    op.instances.create("crm", closeio_spec())
    await op.run("crm")  # 30 to 60 s: not written
    await op.run("crm")  # at the cap (60 to 120 s), and none written yet: written
    written = op.instances.get("crm")
    assert written is not None
    assert written["status"]["conditions"][0]["reason"] == "WaitingForSecret"
    assert "nextAttemptAt" in written["status"]
    await op.run("crm")
    await op.run("crm")  # the same wait at the cap: nothing new to write
    again = op.instances.get("crm")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
