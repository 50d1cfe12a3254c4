"""The circuit breaker's state machine, driven with an explicit clock."""

from __future__ import annotations

import pytest

from connector_operator.openconnectors.circuit import Circuit, CircuitState


def state(circuit: Circuit) -> CircuitState:
    """The state, read through a call so that type checkers do not narrow it across calls."""
    return circuit.state


def failing(circuit: Circuit, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        assert circuit.allow(now)
        circuit.record(False, now)


def test_closed_lets_everything_through_and_opens_at_the_threshold() -> None:
    circuit = Circuit(threshold=3, cooldown=10.0)
    failing(circuit, 2)
    assert state(circuit) is CircuitState.CLOSED
    assert circuit.consecutive_failures == 2
    failing(circuit, 1, now=5.0)
    assert state(circuit) is CircuitState.OPEN
    assert circuit.opened_at == 5.0
    assert not circuit.allow(5.0)
    assert not circuit.allow(14.9)
    assert circuit.retry_after(7.0) == pytest.approx(8.0)


def test_a_success_or_any_answer_below_500_resets_the_count() -> None:
    circuit = Circuit(threshold=3)
    failing(circuit, 2)
    assert circuit.record(True, 1.0) is True  # a success after failures is a recovery
    failing(circuit, 2)
    assert state(circuit) is CircuitState.CLOSED
    assert circuit.record(True, 2.0) is True
    assert circuit.record(True, 3.0) is False  # nothing to recover from


def test_after_the_cooldown_one_probe_goes_and_the_others_wait() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0)
    failing(circuit, 1)
    assert circuit.allow(10.0)  # the probe
    assert state(circuit) is CircuitState.HALF_OPEN
    assert not circuit.allow(10.0)
    assert not circuit.allow(12.0)
    assert circuit.retry_after(12.0) == pytest.approx(8.0)


def test_a_successful_probe_closes_the_circuit() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0)
    failing(circuit, 1)
    assert circuit.allow(10.0)
    assert circuit.record(True, 10.5) is True
    assert state(circuit) is CircuitState.CLOSED
    assert circuit.opened_at is None
    assert circuit.allow(10.5)
    assert circuit.retry_after(10.5) == 0.0


def test_a_failed_probe_reopens_for_twice_as_long_up_to_the_maximum() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0, max_cooldown=25.0)
    failing(circuit, 1)
    assert circuit.allow(10.0)
    circuit.record(False, 11.0)
    assert state(circuit) is CircuitState.OPEN
    assert not circuit.allow(30.9)  # 11 + 20
    assert circuit.allow(31.0)
    circuit.record(False, 31.0)
    assert not circuit.allow(55.9)  # 31 + 25, not 40
    assert circuit.allow(56.0)
    circuit.record(True, 56.0)
    # Closed again, the next opening starts from the base cooldown.
    failing(circuit, 1, now=60.0)
    assert circuit.allow(70.0)


def test_a_released_probe_lets_the_next_call_probe_at_once() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0)
    failing(circuit, 1)
    assert circuit.allow(10.0)
    circuit.release()  # cancelled, or no budget in time: no answer to judge
    assert state(circuit) is CircuitState.HALF_OPEN
    assert circuit.retry_after(10.0) == 0.0
    assert circuit.allow(10.0)
    assert not circuit.allow(10.0)


def test_a_lost_probe_is_replaced_after_a_cooldown() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0)
    failing(circuit, 1)
    assert circuit.allow(10.0)  # never reports
    assert not circuit.allow(19.9)
    assert circuit.allow(20.0)


def test_release_outside_half_open_changes_nothing() -> None:
    circuit = Circuit(threshold=1, cooldown=10.0)
    circuit.release()
    assert state(circuit) is CircuitState.CLOSED
    failing(circuit, 1)
    circuit.release()
    assert not circuit.allow(5.0)


def test_a_call_from_before_the_opening_can_close_or_not_extend_it() -> None:
    circuit = Circuit(threshold=2, cooldown=10.0)
    failing(circuit, 2)
    circuit.record(False, 3.0)  # admitted while closed, failed after the opening
    assert state(circuit) is CircuitState.OPEN
    assert circuit.allow(10.0)  # the cooldown was not extended
    circuit.release()
    circuit = Circuit(threshold=2, cooldown=10.0)
    failing(circuit, 2)
    assert circuit.record(True, 3.0) is True  # the platform answered after all
    assert state(circuit) is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("threshold", "cooldown", "max_cooldown"), [(0, 1.0, 1.0), (1, 0.0, 1.0), (1, 2.0, 1.0)]
)
def test_nonsense_settings_are_refused(threshold: int, cooldown: float, max_cooldown: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Circuit(threshold=threshold, cooldown=cooldown, max_cooldown=max_cooldown)
