"""Parsing and checking the platform's `Authorization: User ..., Organization ..., Element ...` header.

The vendor's clients send the pairs in different orders and with varying whitespace (doc 2.1), so
the simulator must be lenient about layout and strict about values: any mismatch is the one 401
the platform gives, with no hint about which part was wrong.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from open_connectors_simulator.httputil import ApiError

UNAUTHORIZED_MESSAGE = "Invalid Organization or User secret, or invalid Element token provided."

_KINDS = {"user": "user", "organization": "organization", "element": "element"}


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    organization: str | None = None
    element: str | None = None


def unauthorized() -> ApiError:
    return ApiError(401, UNAUTHORIZED_MESSAGE)


def parse_authorization(header: str | None) -> Credentials:
    """Split the header into its pairs; a malformed header is simply unauthorized."""
    if header is None or not header.strip():
        raise unauthorized()
    found: dict[str, str] = {}
    for part in header.split(","):
        pieces = part.strip().split(None, 1)
        if not pieces:
            continue  # tolerate stray commas such as a trailing one
        if len(pieces) != 2:
            raise unauthorized()
        kind = _KINDS.get(pieces[0].lower())
        if kind is None:
            continue  # unknown schemes (e.g. Bearer) carry nothing this API accepts
        value = pieces[1].strip()
        # The same kind twice with different values is ambiguous; refusing is the safe answer.
        if kind in found and found[kind] != value:
            raise unauthorized()
        found[kind] = value
    return Credentials(found.get("user"), found.get("organization"), found.get("element"))


def _same(given: str | None, expected: str) -> bool:
    # Constant-time comparison: the simulator should not teach clients timing-dependent habits,
    # and it costs nothing.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def check_account(credentials: Credentials, *, organization_secret: str, user_secret: str) -> None:
    """The two-part check; an `Element` pair, if present, is accepted and ignored here."""
    if not (_same(credentials.user, user_secret) and _same(credentials.organization, organization_secret)):
        raise unauthorized()
