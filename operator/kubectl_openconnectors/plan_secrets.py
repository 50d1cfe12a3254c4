"""The plan's Secrets, judged here and never sent to the API server (plan.py's Secret half).

Why not a dry run, as for the operator's kinds: a dry-run request carries the Secret's values,
and an audit policy at the RequestResponse level records request bodies, dry runs included. So
the file's Secrets are checked here for the shape the API server would insist on (a v1 Secret
with a valid name, `data` keys and base64 values, `stringData` strings, at most 1 MiB, a type and
an immutable Secret left as stored), and compared with the stored copy in memory, key by key.
Every message names fields and keys, never a value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from kubectl_openconnectors.plan_rules import meta

# The API server's own rules (k8s.io/apimachinery validation: IsDNS1123Subdomain, IsConfigMapKey).
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_NAME = 253
MAX_BYTES = 1024 * 1024  # the total size of a Secret's data
DEFAULT_TYPE = "Opaque"


def problem(doc: Mapping[str, Any]) -> str:
    """Why the API server would refuse this Secret as written, or "" when it would take it."""
    name = meta(doc).get("name")
    if not name:
        return "the manifest has no metadata.name"
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME.match(name):
        return "metadata.name is not a valid name (lower-case letters, digits, '-' and '.')"
    if not isinstance(doc.get("type", DEFAULT_TYPE), str):
        return "type is not a string"
    found = _map_problem(doc, "data", _base64) or _map_problem(doc, "stringData", _text)
    if found:
        return found
    if sum(len(v) for v in _decoded(doc).values()) > MAX_BYTES:
        return f"data is larger than {MAX_BYTES} bytes"
    return ""


def _map_problem(doc: Mapping[str, Any], field: str, value_problem: Any) -> str:
    entries = doc.get(field)
    if entries is None:
        return ""
    if not isinstance(entries, dict):
        return f"{field} is not a map"
    for key, value in entries.items():
        if not isinstance(key, str) or not _valid_key(key):
            return f"{field} has a key that is not valid (letters, digits, '-', '_' and '.')"
        if found := value_problem(value):
            return f"{field}.{key} {found}"
    return ""


def _valid_key(key: str) -> bool:
    return (
        len(key) <= MAX_NAME and bool(KEY.match(key)) and key not in (".", "..") and not key.startswith("..")
    )


def _base64(value: Any) -> str:
    if not isinstance(value, str):
        return "is not a base64 string"
    try:
        base64.b64decode(_unwrapped(value), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    return ""


def _text(value: Any) -> str:
    return "" if isinstance(value, str) else "is not a string (quote it in YAML)"


def _unwrapped(value: str) -> str:
    # Go's base64 decoder, which reads a Secret's data, skips line breaks (`base64` wraps at 76).
    return value.replace("\n", "").replace("\r", "")


def _decoded(doc: Mapping[str, Any]) -> dict[str, bytes]:
    """The content of each key, `stringData` merged over `data` as the API server does. Only
    for a Secret that passed `problem`."""
    data = {k: base64.b64decode(_unwrapped(v)) for k, v in (doc.get("data") or {}).items()}
    return data | {k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()}


def change_problem(stored: Mapping[str, Any], doc: Mapping[str, Any]) -> str:
    """Why the API server would refuse to apply this Secret over the stored one: its type never
    changes, nor does the content of an immutable Secret (a file that leaves `immutable` out
    keeps it, as `kubectl apply` does)."""
    was, now = stored.get("type") or DEFAULT_TYPE, doc.get("type") or DEFAULT_TYPE
    if was != now:
        return f"type {now!r} is not the stored {was!r}: a Secret's type never changes (delete it first)"
    if stored.get("immutable") and (doc.get("immutable") is False or _decoded(stored) != _decoded(doc)):
        return "the stored Secret is immutable: it cannot change (delete it first)"
    return ""


def changed_keys(stored: Mapping[str, Any] | None, doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """The keys whose content changes, those added and those removed (names only)."""
    before, after = _decoded(stored or {}), _decoded(doc)
    return {
        "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
    }
