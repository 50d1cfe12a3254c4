"""From the outcome of one reconcile attempt to the four conditions and the next retry.

kstatus reads `Reconciling` and `Stalled` as abnormal-true conditions and compares
`status.observedGeneration` with `metadata.generation`; Argo CD's health script reads the same
fields. So every outcome decides, in one table-like function, all four conditions at once,
whether the generation counts as handled, and how long to wait before the next attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from connector_operator.api.status import Condition, ConditionType, Reason


class Kind(Enum):
    SUCCESS = "success"
    RETRYING = "retrying"  # transient: retried with backoff, nobody needs to act
    STALLED = "stalled"  # terminal for this generation and Secret content: a human must act
    PAUSED = "paused"  # a human asked for no writes: nothing is attempted, nothing is wrong


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    reason: Reason
    message: str
    # Whether the remote instance exists, is usable, and its token is in the managed Secret.
    ready: bool
    retry_after: float | None = None  # a server-given delay (Retry-After) overrides the backoff

    @property
    def handled(self) -> bool:
        """A generation is fully handled when applied, or when it cannot be applied without a change.
        A paused pass applies nothing: a spec changed while paused stays InProgress for kstatus."""
        return self.kind not in (Kind.RETRYING, Kind.PAUSED)


def success(message: str = "The instance is available and its token is in the Secret") -> Outcome:
    return Outcome(Kind.SUCCESS, Reason.AVAILABLE, message, ready=True)


def retrying(reason: Reason, message: str, *, ready: bool, retry_after: float | None = None) -> Outcome:
    return Outcome(Kind.RETRYING, reason, message, ready=ready, retry_after=retry_after)


def stalled(reason: Reason, message: str, *, ready: bool = False) -> Outcome:
    return Outcome(Kind.STALLED, reason, message, ready=ready)


PAUSED_MESSAGE = (
    "Reconciliation is paused by the annotation openconnectors.io/paused: no platform or Secret writes"
)


def paused(*, ready: bool) -> Outcome:
    return Outcome(Kind.PAUSED, Reason.PAUSED, PAUSED_MESSAGE, ready=ready)


# A condition or Event message is for a human: a readable line, never a dump. Bounding it here
# keeps any text that reaches an outcome (a platform message, an error) from making the status
# write itself fail, and Events are capped by the API server at 1 KiB anyway.
MAX_MESSAGE = 1024


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """One line of printable text of at most `limit` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in message[: limit * 4]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


AVAILABLE = "The instance is available and its token is in the Secret"


def conditions(
    outcome: Outcome,
    generation: int,
    previous: list[Condition] | None,
    now: str,
    *,
    available: str = AVAILABLE,
) -> list[Condition]:
    """All four conditions for `outcome`, keeping lastTransitionTime where a status did not change.
    `available` is Ready's message when ready (an account says something else than an instance).
    Synced carries the outcome's own reason when it is False: `WaitingForSecret` says more than a
    generic error. A paused object keeps its Ready condition as it was."""
    before = {c.type: c for c in previous or []}
    ready_reason = outcome.reason if not outcome.ready else Reason.AVAILABLE
    ready_message = outcome.message if not outcome.ready else available
    kept = before.get(ConditionType.READY.value) if outcome.kind is Kind.PAUSED else None
    failed = outcome.kind is not Kind.SUCCESS
    wanted = [
        (ConditionType.READY, outcome.ready, ready_reason, ready_message),
        (
            ConditionType.SYNCED,
            not failed,
            outcome.reason if failed else Reason.RECONCILE_SUCCESS,
            outcome.message if failed else "The last reconcile succeeded",
        ),
        (
            ConditionType.RECONCILING,
            outcome.kind is Kind.RETRYING,
            outcome.reason if outcome.kind is Kind.RETRYING else Reason.IDLE,
            outcome.message if outcome.kind is Kind.RETRYING else "",
        ),
        (
            ConditionType.STALLED,
            outcome.kind is Kind.STALLED,
            outcome.reason if outcome.kind is Kind.STALLED else Reason.HEALTHY,
            outcome.message if outcome.kind is Kind.STALLED else "",
        ),
    ]
    # Kept as it was, generation included: it describes the generation last worked on, not this one.
    result = [kept] if kept is not None else []
    for type_, flag, reason, message in wanted[1 if kept is not None else 0 :]:
        status = "True" if flag else "False"
        old = before.get(type_.value)
        since = old.last_transition_time if old is not None and old.status == status else now
        result.append(
            Condition(
                type=type_.value,
                status=status,
                reason=reason.value,
                message=bounded(message),
                last_transition_time=since,
                observed_generation=generation,
            )
        )
    return result


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter" (a delay drawn from the upper half of the window),
    capped; attempt 0 is the first retry. Not full jitter: a retry never comes almost at once."""

    base: float = 2.0
    cap: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 16)))
        # Jitter spreads a thousand objects failing together over the window instead of a thundering herd.
        return (rng or random).uniform(ceiling / 2, ceiling)

    def next_delay(self, outcome: Outcome, attempt: int, rng: random.Random | None = None) -> float:
        """The platform's Retry-After wins within [base, cap]; otherwise the jittered backoff.

        The floor is the backoff base, not zero: a platform answering `Retry-After: 0` to every
        call would otherwise get a hot loop of two calls a second per object, forever."""
        if outcome.retry_after is not None:
            return min(max(outcome.retry_after, self.base), self.cap)
        return self.delay(attempt, rng)
