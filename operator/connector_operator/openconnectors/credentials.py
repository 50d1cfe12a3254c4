"""The account secrets a platform call carries: `Credentials`, and the check that an HTTP header
can carry them before any request is made (no message names a value, only the Secret's key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector_operator.api.names import CREDENTIAL_KEYS
from connector_operator.openconnectors import errors

__all__ = ["Credentials"]


@dataclass(frozen=True)
class Credentials:
    user_secret: str = field(repr=False)
    organization_secret: str = field(repr=False)

    def header(self) -> str:
        return f"User {self.user_secret}, Organization {self.organization_secret}"

    def check(self) -> None:
        """Raise `InvalidCredentials` (naming the Secret key, never the value) for a secret that no
        HTTP header can carry. httpx would refuse it itself, but its "Illegal header value" message
        quotes the value, and a UnicodeEncodeError looks transient to the caller."""
        for key, value in zip(CREDENTIAL_KEYS, (self.user_secret, self.organization_secret), strict=True):
            problem = _header_problem(value)
            if problem is not None:
                raise errors.InvalidCredentials(
                    key,
                    f"The account secret under key {key} {problem}, which an HTTP header cannot carry; "
                    "no request was made. Correct the value in the Secret",
                )


def _header_problem(value: str) -> str | None:
    for char in value:
        if char in "\r\n":
            return "contains a line break (a trailing newline from `kubectl create secret --from-file`?)"
        if char < " " or char == "\x7f":
            return "contains a control character"
        if char > "~":
            return "contains a character outside printable ASCII"
    return None
