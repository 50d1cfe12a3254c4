"""`domain.outcome`: from one reconcile attempt to the four conditions and the next retry delay.

Covers `conditions()` for success, retrying (with the instance ready or not) and stalled outcomes:
types Ready, Synced, Reconciling and Stalled with the statuses and reasons of design.md section 4
(Reconciling and Stalled abnormal-true and never both True), observedGeneration on each, and
lastTransitionTime kept while a status holds and moved when it changes (the stored form is
covered in test_transition.py); `Outcome.handled`; `Backoff.delay` bounds, growth and jitter
with a seeded `random.Random`; `Backoff.next_delay` honouring `retry_after`.
"""

from __future__ import annotations

import random

import pytest

from connector_operator.api.status import Condition, Reason
from connector_operator.domain.outcome import (
    MAX_MESSAGE,
    PAUSED_MESSAGE,
    Backoff,
    Outcome,
    bounded,
    conditions,
    paused,
    retrying,
    stalled,
    success,
)

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-01T00:05:00Z"
T3 = "2026-01-01T00:10:00Z"
TYPES = ["Ready", "Synced", "Reconciling", "Stalled"]


def by_type(result: list[Condition]) -> dict[str, tuple[str, str, str]]:
    assert [c.type for c in result] == TYPES
    return {c.type: (c.status, c.reason, c.message) for c in result}


def times(result: list[Condition]) -> dict[str, str]:
    return {c.type: c.last_transition_time for c in result}


def test_success_is_ready_synced_and_neither_reconciling_nor_stalled() -> None:
    result = by_type(conditions(success(), 3, None, T1))
    assert result["Ready"][:2] == ("True", "Available")
    assert result["Synced"] == ("True", "ReconcileSuccess", "The last reconcile succeeded")
    assert result["Reconciling"] == ("False", "Idle", "")
    assert result["Stalled"] == ("False", "Healthy", "")


def test_retrying_before_ready_reports_the_reason_on_ready_synced_and_reconciling() -> None:
    message = "Secret 'closeio-api' does not exist"
    result = by_type(conditions(retrying(Reason.WAITING_FOR_SECRET, message, ready=False), 3, None, T1))
    assert result["Ready"] == ("False", "WaitingForSecret", message)
    # Issue 11: Synced names the cause too, not a generic ReconcileError that reads like a bug.
    assert result["Synced"] == ("False", "WaitingForSecret", message)
    assert result["Reconciling"] == ("True", "WaitingForSecret", message)
    assert result["Stalled"] == ("False", "Healthy", "")


def test_retrying_while_ready_keeps_ready_true_and_marks_synced_false() -> None:
    message = "The platform is rate limiting; retrying after 7s"
    result = by_type(
        conditions(retrying(Reason.RATE_LIMITED, message, ready=True, retry_after=7), 3, None, T1)
    )
    assert result["Ready"][:2] == ("True", "Available")
    assert message not in result["Ready"][2]
    assert result["Synced"] == ("False", "RateLimited", message)
    assert result["Reconciling"] == ("True", "RateLimited", message)
    assert result["Stalled"] == ("False", "Healthy", "")


def test_stalled_is_abnormal_true_and_not_reconciling() -> None:
    message = "The platform rejected the request: invalid configuration"
    result = by_type(conditions(stalled(Reason.CONFIGURATION_REJECTED, message), 3, None, T1))
    assert result["Ready"] == ("False", "ConfigurationRejected", message)
    assert result["Synced"] == ("False", "ConfigurationRejected", message)
    assert result["Reconciling"] == ("False", "Idle", "")
    assert result["Stalled"] == ("True", "ConfigurationRejected", message)


def test_stalled_update_of_a_working_instance_stays_ready() -> None:
    message = "The platform rejected the request: invalid configuration"
    result = by_type(conditions(stalled(Reason.CONFIGURATION_REJECTED, message, ready=True), 3, None, T1))
    assert result["Ready"][:2] == ("True", "Available")
    assert result["Stalled"] == ("True", "ConfigurationRejected", message)


OUTCOMES = [
    pytest.param(success(), id="success"),
    pytest.param(retrying(Reason.CREATING, "creating", ready=False), id="retrying"),
    pytest.param(retrying(Reason.API_UNAVAILABLE, "down", ready=True), id="retrying-ready"),
    pytest.param(stalled(Reason.CREDENTIALS_REJECTED, "rejected"), id="stalled"),
]


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_condition_carries_the_generation_and_a_valid_status(outcome: Outcome) -> None:
    result = conditions(outcome, 42, None, T1)
    assert [c.observed_generation for c in result] == [42, 42, 42, 42]
    assert {c.status for c in result} <= {"True", "False"}
    assert all(c.last_transition_time == T1 for c in result)
    # kstatus: at most one of the abnormal-true conditions holds.
    statuses = {c.type: c.status for c in result}
    assert (statuses["Reconciling"], statuses["Stalled"]) != ("True", "True")


def test_transition_time_is_kept_when_status_holds_and_moved_when_it_changes() -> None:
    first = conditions(success(), 1, None, T1)
    second = conditions(retrying(Reason.API_UNAVAILABLE, "down", ready=True), 2, first, T2)
    assert times(second) == {"Ready": T1, "Synced": T2, "Reconciling": T2, "Stalled": T1}
    third = conditions(stalled(Reason.CREDENTIALS_REJECTED, "rejected"), 3, second, T3)
    assert times(third) == {"Ready": T3, "Synced": T2, "Reconciling": T3, "Stalled": T3}


def test_transition_time_is_kept_when_only_the_reason_changes() -> None:
    first = conditions(stalled(Reason.CONFIGURATION_REJECTED, "bad configuration"), 1, None, T1)
    second = conditions(stalled(Reason.CREDENTIALS_REJECTED, "bad credentials"), 2, first, T2)
    stalled_now = next(c for c in second if c.type == "Stalled")
    assert (stalled_now.status, stalled_now.reason, stalled_now.message) == (
        "True",
        "CredentialsRejected",
        "bad credentials",
    )
    assert stalled_now.last_transition_time == T1
    assert stalled_now.observed_generation == 2


def test_conditions_missing_from_previous_start_now() -> None:
    previous = [c for c in conditions(success(), 1, None, T1) if c.type == "Ready"]
    result = conditions(success(), 2, previous, T2)
    assert times(result) == {"Ready": T1, "Synced": T2, "Reconciling": T2, "Stalled": T2}


@pytest.mark.parametrize(
    ("outcome", "handled"),
    [
        pytest.param(success(), True, id="success"),
        pytest.param(stalled(Reason.CONFIGURATION_REJECTED, "rejected"), True, id="stalled"),
        pytest.param(retrying(Reason.API_UNAVAILABLE, "down", ready=True), False, id="retrying"),
    ],
)
def test_a_generation_is_handled_unless_retrying(outcome: Outcome, handled: bool) -> None:
    assert outcome.handled is handled


# Backoff


def test_delay_stays_within_half_ceiling_and_ceiling() -> None:
    backoff = Backoff(base=2.0, cap=300.0)
    rng = random.Random(7)
    for attempt in range(8):  # ceilings 2, 4, ..., 256: below the cap
        ceiling = 2.0 * 2**attempt
        for _ in range(200):
            assert ceiling / 2 <= backoff.delay(attempt, rng) <= ceiling


@pytest.mark.parametrize("attempt", [8, 9, 16, 17, 1000])
def test_saturated_delay_is_within_half_cap_and_cap(attempt: int) -> None:
    backoff = Backoff(base=2.0, cap=300.0)
    rng = random.Random(attempt)
    samples = [backoff.delay(attempt, rng) for _ in range(500)]
    assert all(150.0 <= s <= 300.0 for s in samples)


def test_delay_doubles_with_each_attempt_until_the_cap() -> None:
    backoff = Backoff(base=1.0, cap=60.0)
    delays = [backoff.delay(attempt, random.Random(99)) for attempt in range(9)]
    # The same draw, scaled by the ceiling: each attempt doubles until the cap (64 > 60) holds it.
    for attempt in range(5):
        assert delays[attempt + 1] == pytest.approx(2 * delays[attempt])
    assert delays[6] == delays[7] == delays[8]
    assert delays[6] < 2 * delays[5]


def test_jitter_spreads_delays_over_the_whole_window() -> None:
    backoff = Backoff(base=2.0, cap=300.0)
    rng = random.Random(2024)
    samples = [backoff.delay(20, rng) for _ in range(2000)]
    assert len(set(samples)) > 1990
    assert min(samples) < 150.0 + 5.0
    assert max(samples) > 300.0 - 5.0
    lower_half = sum(1 for s in samples if s < 225.0)
    assert 800 < lower_half < 1200


def test_delay_with_the_same_seed_is_reproducible() -> None:
    backoff = Backoff()
    first, second = random.Random(5), random.Random(5)
    assert [backoff.delay(a, first) for a in range(10)] == [backoff.delay(a, second) for a in range(10)]


def test_retry_after_beyond_the_cap_is_capped() -> None:
    outcome = retrying(Reason.RATE_LIMITED, "come back tomorrow", ready=True, retry_after=86400.0)
    assert Backoff(base=2.0, cap=300.0).next_delay(outcome, 0, random.Random(1)) == 300.0


def test_next_delay_of_a_retry_is_the_backoff() -> None:
    outcome = retrying(Reason.API_UNAVAILABLE, "down", ready=False)
    backoff = Backoff(base=2.0, cap=300.0)
    assert backoff.next_delay(outcome, 4, random.Random(3)) == backoff.delay(4, random.Random(3))


@pytest.mark.parametrize("attempt", [0, 5, 30])
def test_next_delay_honours_retry_after(attempt: int) -> None:
    outcome = retrying(Reason.RATE_LIMITED, "slow down", ready=True, retry_after=42.0)
    assert Backoff(base=2.0, cap=300.0).next_delay(outcome, attempt, random.Random(1)) == 42.0


@pytest.mark.parametrize("retry_after", [0.0, 0.01, 1.0, 1.99])
@pytest.mark.parametrize("attempt", [0, 5])
def test_retry_after_below_the_base_is_raised_to_the_base(retry_after: float, attempt: int) -> None:
    # `Retry-After: 0` on every answer was two calls a second per object, forever (issue 9, finding 14).
    outcome = retrying(Reason.RATE_LIMITED, "slow down", ready=True, retry_after=retry_after)
    assert Backoff(base=2.0, cap=300.0).next_delay(outcome, attempt, random.Random(1)) == 2.0
    assert Backoff(base=5.0, cap=300.0).next_delay(outcome, attempt, random.Random(1)) == 5.0


def test_a_base_above_the_cap_still_honours_the_cap() -> None:
    outcome = retrying(Reason.RATE_LIMITED, "slow down", ready=True, retry_after=0.0)
    assert Backoff(base=10.0, cap=3.0).next_delay(outcome, 0, random.Random(1)) == 3.0


def test_condition_messages_are_one_bounded_line() -> None:
    long = stalled(Reason.CONFIGURATION_REJECTED, "x" * 5000 + "\n\x00tail")
    ready = next(c for c in conditions(long, 1, None, T1) if c.type == "Stalled")
    assert len(ready.message) == MAX_MESSAGE
    assert ready.message.endswith("…")
    assert bounded("line one\nline\ttwo\x1b[31m") == "line one line two [31m"


def test_paused_keeps_ready_as_it_was_and_says_paused_elsewhere() -> None:
    ready_before = conditions(success(), 3, None, T1)
    result = conditions(paused(ready=True), 4, ready_before, T2)
    ready = next(c for c in result if c.type == "Ready")
    before = next(c for c in ready_before if c.type == "Ready")
    assert (ready.status, ready.reason, ready.message, ready.last_transition_time) == (
        before.status,
        before.reason,
        before.message,
        T1,
    )
    assert ready.observed_generation == 3  # the generation it describes, not the paused one
    by = by_type(result)
    assert by["Synced"] == ("False", "Paused", PAUSED_MESSAGE)
    assert by["Reconciling"][:2] == ("False", "Idle")
    assert by["Stalled"][:2] == ("False", "Healthy")
    assert not paused(ready=True).handled  # observedGeneration stays behind a spec changed while paused
    # Paused from the start: nothing to keep, Ready is False with the reason.
    assert by_type(conditions(paused(ready=False), 1, None, T1))["Ready"][:2] == ("False", "Paused")
