"""engine/retries.py: the one rule for what counts as an attempt, pinned once for instances,
accounts and deletions alike."""

from __future__ import annotations

from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.outcome import Backoff
from connector_operator.engine.retries import Retries

BACKOFF = Backoff(base=2.0, cap=300.0)
FAILED = outcomes.retrying(Reason.API_UNAVAILABLE, "503", ready=False)
ASKED_TO_WAIT = outcomes.retrying(Reason.ACCOUNT_UNAVAILABLE, "circuit open", ready=False, retry_after=1.0)


def test_a_failure_counts_and_grows_the_next_delay() -> None:
    retries: Retries[str] = Retries(BACKOFF)
    assert 1.0 <= retries.failed("a", FAILED) <= 2.0
    assert 2.0 <= retries.failed("a", FAILED) <= 4.0
    assert retries.attempts("a") == 2
    assert retries.attempts("b") == 0  # per key


def test_a_wait_the_platform_asked_for_is_no_attempt() -> None:
    # The account loop used to count these: after a run of CircuitOpen waits, its next real
    # failure backed off as if every wait had been a failure.
    retries: Retries[str] = Retries(BACKOFF)
    for _ in range(8):
        assert retries.failed("a", ASKED_TO_WAIT) == 2.0  # Retry-After 1, floored at the base
    assert retries.attempts("a") == 0
    assert retries.failed("a", FAILED) <= 2.0


def test_a_success_forgets_the_key() -> None:
    retries: Retries[str] = Retries(BACKOFF)
    for _ in range(5):
        retries.failed("a", FAILED)
    retries.succeeded("a")
    assert retries.attempts("a") == 0
    assert retries.failed("a", FAILED) <= 2.0
