"""A circuit breaker for one account: stop calling a platform that keeps failing, probe it now and
then, and resume when it answers.

Without it, every instance of a failing account retries on its own backoff, and a thousand
objects hammer a platform that is down. With it, after `threshold` consecutive failures the
circuit opens: calls are refused locally (the instances report `AccountUnavailable`) until a
cooldown has passed; then one probe goes through (half-open). The probe's answer closes the
circuit, or opens it again for a longer cooldown (doubled, up to `max_cooldown`), so a long outage
costs one call per cooldown instead of one per object per backoff.

What counts: a failure is a 5xx, a timeout or a network error, the platform not answering. Any
answer below 500, 4xx and 429 included, is the platform answering, which closes the circuit: a
rejected request or a rate limit is the caller's business (its backoff, `Retry-After`), not a sign
that the platform is down.

**No single tenant opens it for the others** (tenant-findings N6). On a shared account, five 5xx
in a row from one tenant's requests (a provider error or a slow vendor validation her
configuration provokes) opened the circuit for every team. So each failure names its *source*
(the namespace of the object it was made for; `OWN` for the operator's own calls, such as the
account's check), and the circuit opens only when, in the run of consecutive failures, at least
`min_sources` sources failed `threshold / min_sources` times each (3 and 3 of a run of 5 or more),
or one of the operator's own calls failed, which no tenant shapes. Half-open, a failed probe
reopens it only if the failures since it opened are more than one tenant's; otherwise the next
call probes (so a tenant whose calls fail cannot keep it open by being the probe).
The gate sets `min_sources` to 1 for a namespaced ConnectorAccount, whose users are all one
namespace: there the tenant can only stop herself. (The gate also keeps answers to requests that
carry a tenant's configuration, POST and PUT, from counting as failures at all: budget.py.)

Pure: the clock is passed in (`now`, monotonic seconds), so the state machine is tested without
sleeping; the gate (`budget.py`) drives it. It lives here rather than in `domain/` because the
import contract keeps `domain` and `openconnectors` independent of each other, and the gate, which
needs it, is part of the client.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from connector_operator.openconnectors.fair import OPERATOR

OWN = OPERATOR  # the source of the operator's own calls: no tenant shapes them


class CircuitState(StrEnum):
    """The names the account status reports (`status.circuit.state`)."""

    CLOSED = "Closed"
    OPEN = "Open"
    HALF_OPEN = "HalfOpen"


@dataclass
class Circuit:
    threshold: int = 5  # consecutive failures that open the circuit
    cooldown: float = 15.0  # seconds open before the first probe
    # The cooldown doubles with each failed probe, up to this. Short on purpose: one probe per half
    # minute is nothing for a platform, and recovery is noticed (and everyone retries) within it.
    max_cooldown: float = 30.0
    min_sources: int = 2  # distinct sources a run of failures needs to open it (or one `OWN`)
    state: CircuitState = field(default=CircuitState.CLOSED, init=False)
    consecutive_failures: int = field(default=0, init=False)
    opened_at: float | None = field(default=None, init=False)  # when it last opened; None while closed
    # When a probe may go (OPEN), or when the probe out is given up on (HALF_OPEN).
    open_until: float | None = field(default=None, init=False)
    _current_cooldown: float = field(default=0.0, init=False, repr=False)
    _probing: bool = field(default=False, init=False, repr=False)
    # Failures per source since the last success (CLOSED) or since it opened (OPEN, HALF_OPEN).
    _by_source: Counter[str] = field(default_factory=Counter, init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.threshold, self.min_sources) < 1 or not 0 < self.cooldown <= self.max_cooldown:
            raise ValueError("threshold >= 1, min_sources >= 1 and 0 < cooldown <= max_cooldown are required")
        self._current_cooldown = self.cooldown

    def allow(self, now: float) -> bool:
        """Whether a call may go now. Half-open lets one probe through at a time; a probe that has
        not reported within a cooldown (a caller lost it) is replaced, so the circuit cannot stay
        half-open for good."""
        if self.state is CircuitState.CLOSED:
            return True
        if self._waiting(now):
            return False
        self.state = CircuitState.HALF_OPEN
        self._probing = True
        self.open_until = now + self._current_cooldown  # the probe's expiry
        return True

    def release(self) -> None:
        """A call that `allow` let through ended without an answer to judge (cancelled, or it
        never left: no budget in time). If it was the probe, the next call may probe at once."""
        if self.state is CircuitState.HALF_OPEN:
            self._probing = False

    def record(self, success: bool, now: float, source: str = OWN) -> bool:
        """The outcome of a call that went out, made for `source`. Returns True when it is a
        recovery: a success after failures (the circuit closes, or a closed circuit's failure count
        resets), which is when waiting callers should be told to retry now."""
        if success:
            recovered = self.state is not CircuitState.CLOSED or self.consecutive_failures > 0
            self.state = CircuitState.CLOSED
            self.consecutive_failures = 0
            self.opened_at = self.open_until = None
            self._current_cooldown = self.cooldown
            self._probing = False
            self._by_source.clear()
            return recovered
        self.consecutive_failures += 1
        self._by_source[source] += 1
        if self.state is CircuitState.HALF_OPEN:
            if self._shared(1):
                # The probes failed for more than one tenant: wait longer this time.
                self._current_cooldown = min(self._current_cooldown * 2, self.max_cooldown)
                self._open(now)
            else:
                self._probing = False  # one tenant's failing probe proves nothing: another probes
        elif self.state is CircuitState.CLOSED and self._tripped():
            self._open(now)
        # OPEN: a call admitted before it opened failed too; the cooldown already runs.
        return False

    def retry_after(self, now: float) -> float:
        """Seconds until a refused call may be admitted (0 when it may go now)."""
        if not self._waiting(now):
            return 0.0
        assert self.open_until is not None
        return self.open_until - now

    def _waiting(self, now: float) -> bool:
        """Open and cooling down, or half-open with a probe out."""
        if self.state is CircuitState.CLOSED or self.open_until is None or now >= self.open_until:
            return False
        return self.state is CircuitState.OPEN or self._probing

    def _tripped(self) -> bool:
        each = -(-self.threshold // self.min_sources)  # the threshold shared out, rounded up
        return self.consecutive_failures >= self.threshold and self._shared(each)

    def _shared(self, each: int) -> bool:
        """Whether the failures counted are more than one tenant's doing: the operator's own call
        failed, or `min_sources` sources failed `each` times at least. (Counting sources alone,
        one tenant's forty failures and anyone's one chance failure opened it.)"""
        if self._by_source[OWN]:
            return True
        return sum(1 for count in self._by_source.values() if count >= each) >= self.min_sources

    def _open(self, now: float) -> None:
        self._by_source.clear()  # a probe's failure is judged on what fails after the opening
        self.state = CircuitState.OPEN
        self.opened_at = now
        self.open_until = now + self._current_cooldown
        self._probing = False
