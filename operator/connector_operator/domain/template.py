"""Templates for extra keys of the Secret the operator writes: what they may say, and their limits.

A tenant's custom resource may ask for extra Secret keys built from a few strings the operator knows
(`token`, `instanceID`, `apiURL`, `connectorKey`, `instanceName` and, only when the spec sets
`includeAccountSecrets: true`, `userSecret` and `organizationSecret`). This module owns the
language's terms that the rest of the operator needs: the variables, the limits on size, key count,
filter chains and nesting, `TemplateError`, `SecretTemplate`, what a checked spec's templates
offer, and `CpuBudget`, what one object's templates may cost the event loop. It imports no Jinja,
so that the handlers can name all of these without paying for the renderer; domain/sandbox.py
checks, compiles and renders the templates with Jinja, and imports it only when a spec first has a
template (domain/tokensecret.py).

The values are secrets: no message of `TemplateError` contains one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    "TEMPLATE_CPU_SECONDS",
    "VARIABLES",
    "CpuBudget",
    "SecretTemplate",
    "TemplateBudgetExceeded",
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
# CPU seconds one object's templates may cost in one pass, compiling and rendering together, on
# the event loop every tenant shares. The caps above bound one key (its worst, a `~` chain of 300
# parts, compiles in about 35 ms), not sixteen: 16 such keys took 570 ms. The examples' templates
# compile in about 1 ms, so 250 ms refuses nothing realistic, while a tenant's worst set now costs
# the loop at most this (plus one key) once per generation of the object, never at each pass
# (tenant-findings N2). Measured as the thread's CPU time: waiting is not charged, and other threads
# are not counted. Over it, the object stalls with InvalidSpec until its spec changes.
TEMPLATE_CPU_SECONDS = 0.25


class TemplateError(Exception):
    """A template refused when compiled or when rendered. `message` never contains a value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemplateBudgetExceeded(TemplateError):
    """Compiling and rendering one object's templates took more CPU than its budget allows."""


class CpuBudget:
    """What one object's templates may still spend in a pass: `charge` each compile and render.

    A compile taken from the cache is charged what it cost when it was made, so whether a
    template set fits does not depend on what other objects compiled before it."""

    def __init__(self, seconds: float | None = None) -> None:
        # Read at each budget, not at import: the tests (and nothing else) change the constant.
        self.seconds = TEMPLATE_CPU_SECONDS if seconds is None else seconds
        self.spent = 0.0

    def charge(self, seconds: float, what: str) -> None:
        """Add `seconds`; `TemplateBudgetExceeded` once the total passes the budget."""
        self.spent += seconds
        if self.spent > self.seconds:
            raise TemplateBudgetExceeded(
                f"the templates need more than the {self.seconds * 1000:.0f} ms of CPU one object's "
                f"templates may use (passed while {what}): use fewer or simpler templates"
            )

    @contextmanager
    def measured(self, what: str) -> Iterator[None]:
        """Charge the CPU time the block takes (not if it raises: its error stands)."""
        started = time.thread_time()
        yield
        self.charge(time.thread_time() - started, what)


class SecretTemplate(Protocol):
    """The checked templates of one spec, by Secret key, in the spec's order (domain/sandbox.py
    compiles them)."""

    @property
    def include_account_secrets(self) -> bool:
        """Whether the spec lets the templates use the account secrets."""
        ...

    @property
    def keys(self) -> tuple[str, ...]: ...

    @property
    def cost(self) -> float:
        """The CPU seconds its compile was charged."""
        ...

    def render(self, values: Mapping[str, str], budget: CpuBudget | None = None) -> dict[str, str]:
        """Every key rendered over `values`; raises TemplateError naming the first key that fails
        (`TemplateBudgetExceeded` when the rendering passes `budget`)."""
        ...
