"""What the operator knows of each account between passes: its spec, its credentials, its users.

The account's loop (reconciler/account.py) is the only reader of an account's credentials Secret:
it reads the Secret, checks the secrets with one authenticated call, and keeps them here, so a
thousand instances of one account make no Secret reads of their own and all see a rotation at
the same moment. Instances find their account here by `AccountKey`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.domain.accounts import AccountKey, AccountSpec
from connector_operator.domain.inputs import SecretData
from connector_operator.engine.wakeups import Key

# A 401 this soon after the credentials changed is the platform's hard cut-over at work (the old
# secrets stop at once, the new ones may reach us a moment later): retried, not Stalled.
ROTATION_GRACE = 120.0
# How long after a start an instance waits for an account that existed then to be loaded.
LOADING_GRACE = 30.0


@dataclass
class AccountState:
    key: AccountKey
    spec: AccountSpec | None = None
    secret: Key | None = None  # (namespace, name) of the credentials Secret
    data: SecretData | None = field(default=None, repr=False)  # its decoded content; None: missing
    fingerprint: str | None = None
    changed_at: float = 0.0  # monotonic time the credentials last changed
    loaded: bool = False  # the daemon has read the Secret (or found it missing) at least once
    recovered: bool = False  # the platform answered again after failures: everyone waiting retries now
    recovered_at: float = float("-inf")  # monotonic time of the last such recovery
    # Instances of the account's endpoint that carry this operator's marks but belong to no live
    # object, as the last listing found them (domain/ownership.py `strays`); None: not listed yet.
    strays: tuple[int, ...] | None = None

    def rotated_recently(self, now: float | None = None) -> bool:
        return self.changed_at > 0 and (now or time.monotonic()) - self.changed_at < ROTATION_GRACE

    def secrets(self) -> Mapping[str, SecretData | None]:
        """The credentials as `domain.inputs.resolve` takes them, keyed `namespace/name`."""
        return {self.secret_label: self.data} if self.secret is not None else {}

    @property
    def secret_label(self) -> str:
        return f"{self.secret[0]}/{self.secret[1]}" if self.secret else ""


def waiter(key: AccountKey) -> Key:
    """The account daemon's key in the wake-up registry (distinct from any instance's)."""
    return (f"{key.kind}/{key.namespace}", key.name)


@dataclass
class Accounts:
    states: dict[AccountKey, AccountState] = field(default_factory=dict)
    # The accounts that existed when the operator started (its own listing, before any watch), and
    # when: an instance of one of them waits for its account's loop to load it rather than judge it
    # missing, for at most LOADING_GRACE (handlers/setup.py). None: not listed (the test tiers).
    listed: frozenset[AccountKey] | None = None
    listed_at: float = 0.0
    # Each instance's account as last indexed (and whether it is being deleted): to notice a change.
    users: dict[Key, tuple[AccountKey, bool, bool]] = field(default_factory=dict)  # account, deleting, bound

    def state(self, key: AccountKey) -> AccountState:
        return self.states.setdefault(key, AccountState(key))

    def loading(self, key: AccountKey, now: float | None = None) -> bool:
        """Whether `key` existed at the start and its loop has not loaded it yet (within the grace):
        an instance of it is not judged now. kopf watches each kind on its own, so after a start an
        instance's events can come before its account's: judged then, 200 instances of an account
        read as AccountNotFound for a second, each with two status writes (issue 23's upgrade test)."""
        if self.listed is None or key not in self.listed:
            return False
        state = self.states.get(key)
        loaded = state is not None and state.spec is not None and state.loaded
        return not loaded and (now or time.monotonic()) - self.listed_at < LOADING_GRACE

    def forget(self, key: AccountKey) -> None:
        self.states.pop(key, None)
        if self.listed is not None:  # gone: its instances are judged, not kept waiting
            self.listed = self.listed - {key}
