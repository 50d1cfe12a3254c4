"""What stops a pass with an outcome of its own: raised deep in the remote work, caught by the pass."""

from __future__ import annotations

from connector_operator.domain.outcome import Outcome


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
