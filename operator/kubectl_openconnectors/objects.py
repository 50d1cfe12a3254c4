"""Reading our objects as the API server returns them (plain dicts): conditions, the account an
instance uses, its token Secret's name. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

from kubectl_openconnectors import names

Obj = dict[str, Any]


def meta(obj: Obj) -> Obj:
    return dict(obj.get("metadata") or {})


def status(obj: Obj) -> Obj:
    return dict(obj.get("status") or {})


def spec(obj: Obj) -> Obj:
    return dict(obj.get("spec") or {})


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict(meta(obj).get("annotations") or {})


def conditions(obj: Obj) -> list[Obj]:
    return [c for c in status(obj).get("conditions") or [] if isinstance(c, dict)]


def condition(obj: Obj, type_: str) -> Obj:
    """The condition of that type, or {} when the operator has not written it (yet)."""
    return next((c for c in conditions(obj) if c.get("type") == type_), {})


def is_true(obj: Obj, type_: str) -> bool:
    return condition(obj, type_).get("status") == "True"


def reason(obj: Obj) -> str:
    """The reason that explains the object best: a stall, then a failed sync (Synced says why even
    while Ready stays True, e.g. `Paused` or `WaitingForSecret`), then Ready's own."""
    if is_true(obj, "Stalled"):
        return str(condition(obj, "Stalled").get("reason") or "")
    synced = condition(obj, "Synced")
    if synced.get("status") == "False":
        return str(synced.get("reason") or "")
    return str(condition(obj, "Ready").get("reason") or "")


def deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def paused(obj: Obj) -> bool:
    return annotations_of(obj).get(names.PAUSED_ANNOTATION) == "true"


def token_secret_name(obj: Obj) -> str:
    """The token Secret: as status reports it, else as the spec names it, else the default."""
    named = (spec(obj).get("tokenSecret") or {}).get("name")
    return str(status(obj).get("tokenSecretName") or named or f"{meta(obj).get('name')}-token")


def account_of(obj: Obj) -> tuple[str, str, str]:
    """(kind, namespace, name) of what an instance's credentials come from: status.account once
    the operator resolved it (the default account included), else what the spec names. Kinds:
    the two account kinds, `Secret` (spec.credentialsSecretRef) and `Default` (neither named and
    not resolved yet: the operator's --default-account)."""
    namespace = str(meta(obj).get("namespace") or "")
    kind, _, name = str(status(obj).get("account") or "").partition("/")
    if not name:
        kind, name = _account_in_spec(spec(obj))
    if kind == names.CLUSTER_ACCOUNT_KIND:
        return kind, "", name
    if kind in (names.ACCOUNT_KIND, "Secret"):
        return kind, namespace, name
    return "Default", "", ""


def _account_in_spec(spec_: Obj) -> tuple[str, str]:
    ref = spec_.get("accountRef") or {}
    if ref.get("name"):
        return str(ref.get("kind") or names.CLUSTER_ACCOUNT_KIND), str(ref["name"])
    secret = spec_.get("credentialsSecretRef") or {}
    if secret.get("name"):
        return "Secret", str(secret["name"])
    return "Default", ""
