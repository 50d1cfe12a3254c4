"""One retry clock per key: how long to wait after a failure, and what counts as one.

Instances, accounts and deletions all wait by this rule (client-go's rate limiter: `When`,
`Forget`, `NumRequeues`). An outcome the platform asked us to wait out (`retry_after`: a 429, an
account's open circuit or spent budget) is not a failure of ours and does not grow the next
delay; a success forgets the key. Before this module the account loop counted those waits, so
after a run of `CircuitOpen` waits its next real failure backed off as if all had been failures.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from connector_operator.domain.outcome import Backoff, Outcome

K = TypeVar("K", bound=Hashable)


@dataclass
class Retries(Generic[K]):
    backoff: Backoff
    _attempts: dict[K, int] = field(default_factory=dict)
    _waiting: set[K] = field(default_factory=set)  # failed or told to wait, not succeeded since

    def failed(self, key: K, outcome: Outcome) -> float:
        """The delay before the next attempt; counts the failure unless it was a wait asked for."""
        attempt = self._attempts.get(key, 0)
        delay = self.backoff.next_delay(outcome, attempt)
        if outcome.retry_after is None:
            self._attempts[key] = attempt + 1
        self._waiting.add(key)
        return delay

    def succeeded(self, key: K) -> None:
        self._attempts.pop(key, None)
        self._waiting.discard(key)

    def waiting(self, key: K) -> bool:
        """Whether `key` waits to retry: its last outcome was a failure or a wait asked for."""
        return key in self._waiting

    def attempts(self, key: K) -> int:
        return self._attempts.get(key, 0)
