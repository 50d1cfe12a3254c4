"""`reconciler.outcomes.classify` for what an account's gate raises: nothing was sent, so both are
retried after the gate's own estimate, and an open circuit reads as the account being unavailable."""

from __future__ import annotations

from connector_operator.api.status import Reason
from connector_operator.domain.outcome import Backoff, Kind
from connector_operator.openconnectors import errors
from connector_operator.reconciler.outcomes import classify


def test_an_open_circuit_is_account_unavailable_retried_when_the_probe_may_go() -> None:
    outcome = classify(
        errors.CircuitOpen("ClusterConnectorAccount shared: open", 12.5), ready=True, creating=False
    )
    assert outcome.kind is Kind.RETRYING
    assert outcome.reason is Reason.ACCOUNT_UNAVAILABLE
    assert outcome.retry_after == 12.5
    assert outcome.ready  # an instance that works stays Ready while its account waits
    assert outcome.message == "The account is unavailable: ClusterConnectorAccount shared: open"


def test_an_exhausted_budget_is_rate_limited_retried_after_the_expected_wait() -> None:
    outcome = classify(errors.BudgetExhausted("no room within 30s", 41.0), ready=False, creating=True)
    assert outcome.kind is Kind.RETRYING
    assert outcome.reason is Reason.RATE_LIMITED
    assert outcome.retry_after == 41.0
    assert outcome.message == "no room within 30s"


def test_a_429_says_the_wait_the_operator_will_make_within_its_own_bounds() -> None:
    limited = errors.RateLimited(429, "Too Many Requests", retry_after=1.0)
    assert classify(limited, ready=False, creating=False).message.endswith("retrying after 2s")
    # --backoff-base 5: the scheduler waits 5 s (Backoff.next_delay), and the message says so.
    bounded = classify(limited, ready=False, creating=False, backoff=Backoff(base=5.0, cap=60.0))
    assert bounded.message.endswith("retrying after 5s")
    assert Backoff(base=5.0, cap=60.0).next_delay(bounded, 0) == 5.0
