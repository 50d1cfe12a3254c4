"""Templates for extra keys of the Secret the operator writes: what they may say, and their limits.

A tenant's custom resource may ask for extra Secret keys built from a few strings the operator knows
(`token`, `instanceID`, `apiURL`, `connectorKey`, `instanceName` and, only when the spec sets
`includeAccountSecrets: true`, `userSecret` and `organizationSecret`). This module owns the
language's terms that the rest of the operator needs: the variables, the limits on size, key count,
filter chains and nesting, `TemplateError`, and `SecretTemplate`, what a checked spec's templates
offer. It imports no Jinja, so that the handlers can name all of these without paying for the
renderer; domain/sandbox.py checks, compiles and renders the templates with Jinja, and imports it
only when a spec first has a template (domain/tokensecret.py).

The values are secrets: no message of `TemplateError` contains one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = [
    "ACCOUNT_VARIABLES",
    "MAX_DEPTH",
    "MAX_FILTER_CHAIN",
    "MAX_INT_DIGITS",
    "MAX_KEYS",
    "MAX_NODES",
    "MAX_RENDERED",
    "MAX_SECRET_BYTES",
    "MAX_TEMPLATE",
    "VARIABLES",
    "SecretTemplate",
    "TemplateError",
]

VARIABLES = ("token", "instanceID", "apiURL", "connectorKey", "instanceName")
ACCOUNT_VARIABLES = ("userSecret", "organizationSecret")
MAX_TEMPLATE = 4096  # characters per template
MAX_KEYS = 16
MAX_RENDERED = 64 * 1024  # characters per rendered key

# At most this many filters on any path through one expression (`x|f|g|h`, or a filter inside
# another's argument): each may grow its input a few times over (tojson escapes a character into
# up to 12), so an unbounded chain would be an exponential amplifier even with the length checks.
MAX_FILTER_CHAIN = 3
# How deep the tree may nest. A legitimate template stays far below; the cap keeps Jinja's code
# generator and Python's compiler (which refuses deeply nested expressions) on the safe side, and
# the checker from recursing deeply on `a or b or c or ...`, which Jinja nests to the left.
MAX_DEPTH = 32
# How many parts (Jinja nodes) one template may have. Compiling costs about 40 microseconds a part
# (a 4 KiB `~` chain of ~2,000 parts took 82 ms, and 16 such keys a pass blocked the event loop for
# 1.3 s: tenant-findings N2); the longest example template has fewer than 60.
MAX_NODES = 300
# A literal integer of more digits cannot be compiled (Python refuses to print integers of over
# 4,300 digits; a hex literal of 3,580 digits is one: N12), and no Secret needs one.
MAX_INT_DIGITS = 64
# What the API server accepts in one Secret: the bytes of all its values together (MaxSecretSize).
# A rendered Secret over it would be refused at every write; it stalls with InvalidSpec instead (N16).
MAX_SECRET_BYTES = 1024 * 1024


class TemplateError(Exception):
    """A template refused when compiled or when rendered. `message` never contains a value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretTemplate(Protocol):
    """The checked templates of one spec, by Secret key, in the spec's order (domain/sandbox.py
    compiles them)."""

    @property
    def include_account_secrets(self) -> bool:
        """Whether the spec lets the templates use the account secrets."""
        ...

    @property
    def keys(self) -> tuple[str, ...]: ...

    def render(self, values: Mapping[str, str]) -> dict[str, str]:
        """Every key rendered over `values`; raises TemplateError naming the first key that fails."""
        ...
