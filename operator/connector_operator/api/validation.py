"""How a spec that does not validate is described to a person: the one formatter of pydantic errors
for conditions and Events (field path and message, the first few only, never the input values)."""

from __future__ import annotations

from pydantic import ValidationError

SHOWN = 5  # problems named; a spec with more says the first ones, which is where one starts


def describe(error: ValidationError) -> str:
    """`spec.a.b: message; ...` for the first `SHOWN` problems. `include_input=False`: a rejected
    value may be a secret someone pasted into the wrong field."""
    problems = error.errors(include_url=False, include_input=False)[:SHOWN]
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problems)
