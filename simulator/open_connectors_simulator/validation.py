"""Input rules for instance bodies: sanitising, stringifying and validating configuration.

These are the rules a client can trip over on the real platform (doc sections 5, 7 and 9); they
live apart from the HTTP layer so that create, PUT, PATCH and the configuration sub-resource all
apply exactly the same checks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from open_connectors_simulator.catalog import Element
from open_connectors_simulator.httputil import ApiError

OAUTH_CODE_MESSAGE = "You must provide an OAuth code in order to create an instance of this element"

_TAG = re.compile(r"<[^>]*>")
_BOOLEAN_KEYS = ("event.notification.enabled", "filter.response.nulls")
_VENDOR_TYPES = ("polling", "webhook")
_NOTIFICATION_TYPES = ("webhook",)
_CALLBACK_KEY = "event.notification.callback.url"


def strip_html(text: str) -> str:
    """The platform strips markup from names and tags (`<a ...>x</a>` becomes `x`)."""
    return _TAG.sub("", text).strip()


def sanitize_name(value: object) -> str:
    if value is None:
        raise ApiError(400, "Missing required field: name")
    if not isinstance(value, str):
        raise ApiError(400, "Invalid field: name must be a string")
    name = strip_html(value)
    if not name:
        raise ApiError(400, "Missing required field: name")
    return name


def sanitize_tags(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ApiError(400, "Invalid field: tags must be an array of strings")
    tags: list[str] = []
    for raw in value:
        tag = strip_html(raw)
        # Tags behave as a set on the platform; duplicates and tags that were only markup vanish.
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def sanitize_description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "Invalid field: description must be a string")
    return strip_html(value)


def stringify(value: object) -> str | None:
    """Configuration values come back as strings whatever JSON type was sent (doc section 3)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    # Objects such as event.poller.configuration are stored as JSON text.
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def configuration_changes(value: object) -> dict[str, str | None]:
    """Normalise a request's `configuration`; `None` marks a key the client asked to unset."""
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid field: configuration must be a JSON object")
    return {str(key): stringify(raw) for key, raw in value.items()}


def _boolean(key: str, value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ApiError(400, f"Invalid value '{value[:40]}' for configuration '{key}': expected true or false")
    return lowered


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ApiError(
            400,
            f"Invalid value '{value[:40]}' for configuration '{key}': expected one of {', '.join(allowed)}",
        )
    return value


def _http_url(key: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ApiError(400, f"Invalid value for configuration '{key}': expected an http(s) URL")
    return value


def validate_common(configuration: Mapping[str, str]) -> dict[str, str]:
    """Check and canonicalise the platform-wide keys of doc section 9; returns a new mapping."""
    result = dict(configuration)
    for key in _BOOLEAN_KEYS:
        if key in result:
            result[key] = _boolean(key, result[key])
    if "event.vendor.type" in result:
        _one_of("event.vendor.type", result["event.vendor.type"], _VENDOR_TYPES)
    if "event.notification.type" in result:
        _one_of("event.notification.type", result["event.notification.type"], _NOTIFICATION_TYPES)
    if _CALLBACK_KEY in result:
        _http_url(_CALLBACK_KEY, result[_CALLBACK_KEY])
    return result


def check_required(
    element: Element, configuration: Mapping[str, str], external_authentication: str = "none"
) -> None:
    """One 400 naming every missing key, so a client can fix all of them in one round trip.

    An OAuth instance created from a refresh token needs no callback URL: there is no redirect
    (the vendor's own "external" create sends none)."""
    exempt = {"oauth.callback.url"} if external_authentication == "initial" else set()
    missing = [
        key for key in element.required_keys if key not in exempt and not configuration.get(key, "").strip()
    ]
    if missing:
        # Wording is the simulator's own: the doc only says the error names the missing entries.
        raise ApiError(400, f"Missing required configuration(s): {', '.join(missing)}")


def check_provider_data(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid field: providerData must be a JSON object")
    return value


def check_oauth(
    element: Element, provider_data: Mapping[str, Any] | None, external_authentication: str
) -> None:
    """OAuth elements need the authorization code, unless created from an existing refresh token."""
    if not element.is_oauth or external_authentication == "initial":
        return
    code = (provider_data or {}).get("code")
    if not isinstance(code, str) or not code.strip():
        raise ApiError(400, OAUTH_CODE_MESSAGE)


def check_external_authentication(element: Element, value: object, configuration: Mapping[str, str]) -> str:
    """`externalAuthentication: initial` creates an OAuth instance from a refresh token (doc 4.8)."""
    if value is None:
        return "none"
    if value not in ("none", "initial"):
        raise ApiError(400, "Invalid field: externalAuthentication must be 'none' or 'initial'")
    if value == "initial" and element.is_oauth and not configuration.get("oauth.user.refresh_token"):
        raise ApiError(400, "Missing required configuration(s): oauth.user.refresh_token")
    return str(value)


def element_reference(body: Mapping[str, Any]) -> str | int | None:
    """The element named by the body: `element` (the wire name) or its doc alias `connector`."""
    for field in ("element", "connector"):
        ref = body.get(field)
        if ref is None:
            continue
        if not isinstance(ref, dict):
            raise ApiError(400, f"Invalid field: {field} must be an object with a 'key'")
        key = ref.get("key")
        if isinstance(key, str) and key.strip():
            return key.strip()
        element_id = ref.get("id")
        if isinstance(element_id, int) and not isinstance(element_id, bool):
            return element_id
        raise ApiError(400, f"Invalid field: {field} must carry a 'key' (or 'id')")
    return None
