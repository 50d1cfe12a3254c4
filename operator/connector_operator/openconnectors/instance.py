"""`Instance`: the parts of a platform ElementInstance the operator uses, checked before it is used.

An answer becomes an Instance only with an integer `id` and a non-empty string `token`: anything
else would become a Ready object with an empty token Secret. An integer in any JSON form is one
(`400001`, `400001.0`, `4.00001e5`): `instance_id_of` is the rule for every id the client reads,
and the client decodes the numbers written with a fraction or an exponent as `Decimal`, so that
it is exact past 2**53 too, where a float would read `9007199254740993.0` as another instance's
id. Each object keeps its Instance in memory and its facts reach the object's status, so the
platform-supplied strings are bounded (a token of at most `MAX_TOKEN` characters, facts redacted
and cut to `MAX_FACT`, at most `MAX_TAGS` tags); a failure carries the real HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector_operator.openconnectors import errors
from connector_operator.openconnectors.redaction import Redactor

# Platform tokens are 44 base64 characters; anything near this bound is not a token.
MAX_TOKEN = 1024
MAX_FACT = 253
MAX_TAGS = 64  # the spec allows 50 of the user's, plus the operator's own two
# Names and tags are kept whole up to this length for the drift comparison (the longest the
# operator sends: a `<namespace>-<name>` default name is 317 characters, its object tag 328).
MAX_COMPARED = 1024
# Configuration is kept for drift detection only (never sent back): bounded like the rest.
MAX_CONFIGURATION_KEYS = 256
MAX_CONFIGURATION_VALUE = 64 * 1024
MAX_ID = 2**63 - 1  # status.instanceID is an int64
EXACT_FLOAT = 2**53  # below this a float is exactly the integer written; from it on, maybe a neighbour


@dataclass(frozen=True)
class Instance:
    """The parts of an ElementInstance the operator uses."""

    id: int
    token: str = field(repr=False)
    # As the platform holds them, for the drift comparison only: never reported, never in a repr.
    name: str = field(default="", repr=False)
    tags: tuple[str, ...] = field(default=(), repr=False)
    valid: bool = True
    disabled: bool = False
    element_key: str | None = None
    element_name: str | None = None
    hub: str | None = None
    authentication_type: str | None = None
    # Key and value as text, for comparison with the spec (domain/drift.py); masked values stay masked.
    configuration: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_json(cls, data: Any, status: int = 200, redactor: Redactor | None = None) -> Instance:
        """The Instance in a platform answer, or `MalformedResponse` with the answer's `status`."""
        if not isinstance(data, Mapping):
            what = "an empty body" if data is None else "something that is not an instance"
            raise errors.MalformedResponse(status, f"the platform answered with {what}")
        instance_id, token = instance_id_of(data.get("id")), data.get("token")
        if instance_id is None:
            raise errors.MalformedResponse(
                status, "the platform answered with an instance without an integer id"
            )
        if not isinstance(token, str) or not token:
            raise errors.MalformedResponse(
                status, f"the platform answered instance {instance_id} without a token"
            )
        if len(token) > MAX_TOKEN:
            raise errors.MalformedResponse(
                status,
                f"the platform answered instance {instance_id} with a token over {MAX_TOKEN} characters",
            )
        safe = redactor or Redactor(())
        element = data.get("element")
        element = element if isinstance(element, Mapping) else {}
        return cls(
            id=instance_id,
            token=token,
            name=_compared(data.get("name")),
            tags=tuple(t for t in tags_of(data)[:MAX_TAGS] if len(t) <= MAX_COMPARED),
            valid=bool(data.get("valid", True)),
            disabled=bool(data.get("disabled", False)),
            element_key=_fact(element.get("key"), safe),
            element_name=_fact(element.get("name"), safe),
            hub=_fact(element.get("hub"), safe),
            authentication_type=_fact(element.get("authenticationType"), safe),
            configuration=_configuration(data.get("configuration")),
        )


def instance_id_of(value: Any) -> int | None:
    """The instance ID a decoded JSON value stands for, or None: an integral number in any JSON
    form (`400001`, `400001.0`, `4.00001e5`, as int or `Decimal`) from 0 to `MAX_ID`. Not a
    boolean, a string, a fraction, NaN or infinity. A float (the client decodes none but NaN and
    infinity) counts only below 2**53: from there on it may be a neighbour's id, rounded."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, Decimal):
        # Bounds first: int() of `1e999999999` would build a number of a billion digits.
        if not value.is_finite() or not 0 <= value <= MAX_ID or value != value.to_integral_value():
            return None
        return int(value)
    if isinstance(value, float):
        if not value.is_integer() or not 0 <= value < EXACT_FLOAT:  # NaN and infinity are not
            return None
        return int(value)
    return None


def tags_of(data: Mapping[str, Any]) -> list[str]:
    """The string tags of a raw instance (a search filters on these before parsing)."""
    tags = data.get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _configuration(raw: Any) -> tuple[tuple[str, str], ...]:
    """The configuration map as text (`true`, `15`), skipping what cannot be a value we sent."""
    if not isinstance(raw, Mapping):
        return ()
    kept = []
    for key, value in list(raw.items())[:MAX_CONFIGURATION_KEYS]:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Decimal):
            text = str(float(value))  # as a float decoder would have it: `1.50` is `1.5`
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            continue
        if isinstance(key, str) and len(key) <= MAX_FACT and len(text) <= MAX_CONFIGURATION_VALUE:
            kept.append((key, text))
    return tuple(kept)


def _compared(value: Any) -> str:
    """A name as the platform holds it, for comparison only (never reported): not redacted, bounded."""
    return value if isinstance(value, str) and len(value) <= MAX_COMPARED else ""


def _fact(value: Any, redactor: Redactor) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    return redactor.redact(str(value), MAX_FACT) or None
