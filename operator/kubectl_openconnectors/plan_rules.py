"""The plan's rules (plan.py's pure half): how the operator reads a spec and what it does with a
change, over plain JSON, with no API call.

What counts as a change is what the operator would act on: a spec with its defaults written out
(`normal`) and compared map by map (`diff`), the steering annotations it reads, and the keys of the
Secrets an object reads (`reads`). What it does is in words for the plan's `detail`: which changes
reach the platform and how (`instance_update`), following the operator's reconcile pass: only the
request of domain/desired.py (name, connector, tags, configuration, events, filterResponseNulls,
and the URL it goes to) is sent, with one PUT when it changed; the token Secret's shape, the
deletion policy and the resync interval are not. Nothing here reads a value of a Secret.

The names it shares with the operator come from names.py (repeated there, not imported: the
plugin does not depend on the operator's package).
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, cast

from kubectl_openconnectors import names

API_VERSION = names.API_VERSION
API_VERSIONS = names.API_VERSIONS
INSTANCE, ACCOUNT = names.INSTANCE_KIND, names.ACCOUNT_KIND
CLUSTER_ACCOUNT, SECRET = names.CLUSTER_ACCOUNT_KIND, "Secret"
CREDENTIAL_KEYS = frozenset({"userSecret", "organizationSecret"})  # of a credentials Secret
# spec.oauth's Secrets and the keys the operator reads from each (the operator's api/oauth.py).
AUTHORIZATION = "authorizationSecretRef"
OAUTH_READS = {
    "appCredentialsSecretRef": frozenset({"clientId", "clientSecret"}),
    AUTHORIZATION: frozenset({"code", "state", "error"}),
    "refreshTokenSecretRef": frozenset({"refreshToken"}),
}
# A new value of these is a new grant: the instance is re-authenticated in place (same instance
# ID), not updated with a PUT of its spec. `state` and `error` come with a code or a denied
# consent: the operator checks them and sends neither.
GRANT_KEYS = frozenset({"code", "refreshToken"})
NOT_SENT_KEYS = CREDENTIAL_KEYS | OAUTH_READS[AUTHORIZATION] | OAUTH_READS["refreshTokenSecretRef"]
PAUSED = names.PAUSED_ANNOTATION
RECONCILE = names.RECONCILE_REQUEST_ANNOTATION
TAKE_OVER = names.TAKE_OVER_ANNOTATION
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

CREATE, ADOPT, UPDATE, NOTHING, ERROR = "create", "adopt", "update", "nothing", "error"
ACTIONS = (CREATE, ADOPT, UPDATE, NOTHING, ERROR)

# Spec fields of a ConnectorInstance outside the request the platform sees: no platform write.
# (A token Secret the operator cannot prove current, after a restart, costs one read of the
# instance; the others cost no call at all.)
NOT_SENT = {
    "tokenSecret": "the token Secret is rewritten, at most one read",
    "deletionPolicy": "used at deletion",
    "resyncInterval": "sets when the next check runs",
    "managementPolicy": "no more platform writes",
}
DIFF_DEPTH = 2  # down to spec.events.enabled; a configuration entry or a template is compared whole

Key = tuple[str, str]  # (namespace, name) of a Secret


def meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], obj.get("metadata") or {})


def join(parts: Iterable[str]) -> str:
    return "; ".join(p for p in parts if p)


def replacing(stored: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The stored object with the manifest applied, for a dry-run replace of one of the operator's
    kinds (never a Secret: plan_secrets.py): the manifest's spec whole, as the file is the object's
    truth (the operator never writes a spec); its labels and annotations added, and those that
    `kubectl apply` applied before and the file no longer has removed (the last-applied
    annotation), as kubectl does."""
    body = copy.deepcopy(stored)
    metadata = body.setdefault("metadata", {})
    metadata.pop("managedFields", None)
    for part in ("labels", "annotations"):
        last = _last_applied(stored, part)
        kept = {k: v for k, v in (metadata.get(part) or {}).items() if k not in last}
        metadata[part] = {**kept, **(meta(manifest).get(part) or {})}
    body.pop("spec", None)
    if "spec" in manifest:
        body["spec"] = manifest["spec"]
    return body


def _last_applied(stored: Mapping[str, Any], part: str) -> dict[str, Any]:
    try:
        last = json.loads((meta(stored).get("annotations") or {}).get(LAST_APPLIED) or "{}")
        return dict(last.get("metadata", {}).get(part) or {})
    except (ValueError, AttributeError):
        return {}


def reads(kind: str, namespace: str, spec: Mapping[str, Any]) -> dict[Key, frozenset[str]]:
    """The Secrets (namespace, name) an object reads, and which of their keys."""
    found: dict[Key, set[str]] = defaultdict(set)
    ref = spec.get("credentialsSecretRef") or {}
    if ref.get("name"):
        found[(str(ref.get("namespace") or namespace), str(ref["name"]))].update(CREDENTIAL_KEYS)
    for entry in (spec.get("configuration") or []) if kind == INSTANCE else []:
        key_ref = (entry.get("valueFrom") or {}).get("secretKeyRef") or {}
        if key_ref.get("name"):
            found[(namespace, str(key_ref["name"]))].add(str(key_ref.get("key", "")))
    oauth = (spec.get("oauth") or {}) if kind == INSTANCE else {}
    for field, keys in OAUTH_READS.items():
        oauth_ref = oauth.get(field) or {}
        if oauth_ref.get("name"):
            found[(namespace, str(oauth_ref["name"]))].update(keys)
    return {key: frozenset(keys) for key, keys in found.items()}


def awaited(kind: str, namespace: str, spec: Mapping[str, Any]) -> list[Key]:
    """The Secrets a new object waits for: every one it reads but the OAuth authorization Secret,
    which `kubectl openconnectors authorize` creates when a person consents (until then the object
    waits for her, reason AuthorizationRequired, not for a Secret)."""
    oauth = {k: v for k, v in (spec.get("oauth") or {}).items() if k != AUTHORIZATION}
    return list(reads(kind, namespace, {**spec, "oauth": oauth}))


def normal(kind: str, namespace: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as the operator reads it: empty values dropped, its defaults written out (the CRDs
    have none on the spec: the operator applies them, api/spec.py `effective_*`), tags as a set
    and the configuration by key (the request is a map: order is no change)."""
    out: dict[str, Any] = _pruned(dict(spec))
    if kind != INSTANCE:
        return out
    out.setdefault("instanceName", f"{namespace}-{name}")
    out.setdefault("deletionPolicy", "Delete")
    out.setdefault("managementPolicy", "Full")
    out["tokenSecret"] = {"name": f"{name}-token", **(out.get("tokenSecret") or {})}
    if "tags" in out:
        out["tags"] = sorted(set(out["tags"]))
    if "configuration" in out:
        out["configuration"] = {str(e.get("key")): e for e in out["configuration"]}
    return out


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def diff(before: Any, after: Any, path: str, depth: int = DIFF_DEPTH) -> list[str]:
    """The paths where two values differ, down to `depth` levels of maps."""
    if depth > 0 and isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(before.keys() | after.keys()):
            found += diff(before.get(key), after.get(key), f"{path}.{key}", depth - 1)
        return found
    return [] if before == after else [path]


def steering(stored: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, str]:
    """The operator's steering annotations the manifest changes, and what each change does."""
    was, now = meta(stored).get("annotations") or {}, meta(after).get("annotations") or {}
    notes = {}
    if (was.get(PAUSED) == "true") != (now.get(PAUSED) == "true"):
        paused = now.get(PAUSED) == "true"
        notes[PAUSED] = "paused: no platform call until it goes" if paused else "resumed: the spec is applied"
    if now.get(RECONCILE) not in (None, was.get(RECONCILE)):
        notes[RECONCILE] = "a full pass with a platform check (one read)"
    if was.get(TAKE_OVER) != now.get(TAKE_OVER):
        notes[TAKE_OVER] = "read only when the object adopts its instance"
    return {f"metadata.annotations.{a}": note for a, note in notes.items()}


def pending_note(stored: Mapping[str, Any]) -> str:
    """What the stored object still waits for: its spec not yet applied (Synced, for an account
    Ready, not True for its generation), or paused; and what ObserveOnly says Full would do."""
    status, generation = stored.get("status") or {}, meta(stored).get("generation")
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    condition = conditions.get("Synced") or conditions.get("Ready")
    paused = (meta(stored).get("annotations") or {}).get(PAUSED) == "true"
    notes = ["paused: nothing is sent until the annotation goes"] if paused else []
    if meta(stored).get("deletionTimestamp"):
        notes.append("the stored object is being deleted")
    if status.get("plannedAction"):  # ObserveOnly's dry run of Full
        notes.append(f"status.plannedAction: {status['plannedAction']}")
    observed = status.get("observedGeneration")
    if condition is None or condition.get("status") != "True" or observed != generation:
        said = condition or {}
        state = f"{said.get('type')} {said.get('status')}, {said.get('reason')}" if said else "no status yet"
        notes.append(f"the stored spec (generation {generation}) is still pending: {state}")
    return join(notes)


def new_instance(name: str, spec: Mapping[str, Any], annotations: Mapping[str, Any]) -> tuple[str, str]:
    """The action and detail for a ConnectorInstance not stored yet."""
    secret = (spec.get("tokenSecret") or {}).get("name") or f"{name}-token"
    instance_id, take_over = spec.get("instanceID"), annotations.get(TAKE_OVER)
    if spec.get("managementPolicy") == "ObserveOnly":
        return (
            ADOPT,
            f"ObserveOnly: reads instance {instance_id}, never writes it; token into Secret {secret}",
        )
    if instance_id is not None:
        over = f", taking it over from object {take_over}" if take_over else ""
        return (
            ADOPT,
            f"adopts instance {instance_id} with one PUT (no POST){over}; token into Secret {secret}",
        )
    if take_over:
        return CREATE, "take-over-from without spec.instanceID is ignored: creates the instance with one POST"
    if (spec.get("oauth") or {}).get(AUTHORIZATION):
        consent = f"once a person consents (kubectl openconnectors authorize {name})"
        return CREATE, f"creates the instance with one POST {consent}; token into Secret {secret}"
    return CREATE, f"creates the instance with one POST; token into Secret {secret}"


def instance_update(
    stored: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    spec_fields: list[str],
    secrets: Mapping[str, frozenset[str]],
) -> str:
    """What the operator does with a changed ConnectorInstance: which changes reach the platform.
    `secrets`: `Secret <name> keys: ...` and the keys the object reads that changed."""
    status = stored.get("status") or {}
    top = sorted({f.split(".")[1] for f in spec_fields})
    sent = [f"spec.{t}" for t in top if t not in NOT_SENT]
    sent += [field for field, keys in secrets.items() if keys - NOT_SENT_KEYS]
    quiet = [f"spec.{t} ({NOT_SENT[t]})" for t in top if t in NOT_SENT]
    notes = []
    observing = after.get("managementPolicy") == "ObserveOnly"
    if before.get("managementPolicy") == "ObserveOnly" and not observing:
        # What that PUT changes is status.plannedAction, which the pending note shows.
        notes.append(f"switches to Full: adopts instance {after.get('instanceID')} with one PUT")
        quiet = [q for q in quiet if not q.startswith("spec.managementPolicy")]
    elif sent and observing:
        notes.append(f"ObserveOnly: no platform write for {', '.join(sent)}; status.plannedAction shows it")
    elif sent and status.get("instanceID") is None:
        notes.append("no remote instance yet: the operator creates it with the new spec")
    elif sent:
        notes.append(f"one PUT of instance {status.get('instanceID')} for {', '.join(sent)}")
    if quiet:
        notes.append(f"no platform write for {', '.join(quiet)}")
    return join([*notes, *_secret_notes(status.get("instanceID"), secrets)])


def _secret_notes(instance_id: Any, secrets: Mapping[str, frozenset[str]]) -> list[str]:
    """What changed keys the operator does not send as the spec do: account credentials and grants."""
    notes = []
    if any(keys & CREDENTIAL_KEYS for keys in secrets.values()):
        notes.append("new account secrets: used for the next calls, no PUT")
    granted = [field for field, keys in secrets.items() if keys & GRANT_KEYS]
    if granted and instance_id is None:
        notes.append(f"a new grant ({', '.join(granted)}): the operator creates the instance from it")
    elif granted:
        notes.append(f"a new grant ({', '.join(granted)}): re-authenticates instance {instance_id} in place")
    return notes
