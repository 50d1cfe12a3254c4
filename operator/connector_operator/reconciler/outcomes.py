"""The one place where failures become outcomes, and the exceptions a pass stops with (`Refused`,
`TokenSecretConflict`): raised deep in the remote work, caught by the pass.

Retryable: the platform unreachable, 5xx, 429, an account's open circuit breaker or exhausted
request budget, Kubernetes API hiccups. Terminal for the current
generation and Secret content: the configuration rejected (400), the account secrets rejected
(401/403), an unknown connector. Messages carry no secret values: the client has redacted
platform messages, and Kubernetes errors are reduced to their status and reason.
"""

from __future__ import annotations

from connector_operator.api.status import Reason
from connector_operator.domain.outcome import Backoff, Outcome, retrying, stalled, success
from connector_operator.kube.api import KubeError
from connector_operator.openconnectors import errors

DEFAULT_BACKOFF = Backoff()


def classify(
    error: BaseException, *, ready: bool, creating: bool, backoff: Backoff = DEFAULT_BACKOFF
) -> Outcome:
    """The outcome of a failure; `backoff`: the operator's bounds, which a 429's wait is kept in."""
    match error:
        case errors.BadRequest():
            return stalled(
                Reason.CONFIGURATION_REJECTED,
                f"The platform rejected the request: {error.message}",
                ready=ready,
            )
        case errors.Unauthorized() | errors.Forbidden():
            return stalled(
                Reason.CREDENTIALS_REJECTED,
                f"The platform rejected the account secrets (HTTP {error.status}): {error.message}",
                ready=ready,
            )
        case errors.NotFound() if creating:
            return stalled(
                Reason.CONNECTOR_NOT_FOUND, f"The platform does not know this connector: {error.message}"
            )
        case errors.InvalidCredentials():
            # Normally caught earlier, while resolving the Secret (domain/inputs.py): a backstop.
            return stalled(
                Reason.CREDENTIALS_REJECTED,
                f"The account secrets cannot be sent: {error}",
                ready=ready,
            )
        case errors.RateLimited():
            # The wait the scheduler will really make: Backoff.next_delay keeps Retry-After in bounds.
            wait = (
                f"; retrying after {min(max(error.retry_after, backoff.base), backoff.cap):g}s"
                if error.retry_after is not None
                else ""
            )
            return retrying(
                Reason.RATE_LIMITED,
                f"The platform is rate limiting{wait}",
                ready=ready,
                retry_after=error.retry_after,
            )
        case errors.CircuitOpen():
            # The account's own status says CircuitOpen; its instances say why they wait. No
            # number in the message: every instance of the account would rewrite its status
            # whenever the expected wait changed.
            return retrying(
                Reason.ACCOUNT_UNAVAILABLE,
                f"The account is unavailable: {error.message}",
                ready=ready,
                retry_after=error.retry_after,
            )
        case errors.BudgetExhausted() | errors.NoSlot():
            # Our own bounds held the call back. No slot in time has no expected wait (0): an
            # attempt, which grows the backoff.
            after = error.retry_after or None
            return retrying(Reason.RATE_LIMITED, error.message, ready=ready, retry_after=after)
        case errors.OpenConnectorsError():
            return retrying(Reason.API_UNAVAILABLE, f"The platform API failed: {error}", ready=ready)
        case KubeError():
            return retrying(
                Reason.KUBERNETES_ERROR,
                f"Kubernetes API error: HTTP {error.status} {error.reason}",
                ready=ready,
            )
        case _:
            # Unexpected: report the type only; str() of an arbitrary exception might quote a value.
            return retrying(
                Reason.RECONCILE_ERROR,
                f"Unexpected {type(error).__name__}; see the operator log",
                ready=ready,
            )


class Refused(Exception):
    """The pass cannot go on for a reason a human must see: the outcome says which."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class TokenSecretConflict(Exception):
    """The token Secret's name is taken by a Secret that is not this object's."""

    def __init__(self, secret: str, message: str) -> None:
        super().__init__(message)
        self.secret, self.message = secret, message


def verdict(instance_id: int, *, valid: bool, disabled: bool) -> Outcome:
    """What the platform's report of an instance means for the object."""
    if not valid:
        return stalled(
            Reason.INSTANCE_INVALID,
            f"The platform reports instance {instance_id} as invalid; "
            "re-authenticate it on the platform or update its configuration",
        )
    if disabled:
        return stalled(Reason.INSTANCE_DISABLED, f"Instance {instance_id} is disabled on the platform")
    return success()
