"""`kubectl openconnectors plan -f FILE`: what the operator would do with manifests not yet applied.

This module owns the plan: one `Item` for each ConnectorInstance, ConnectorAccount,
ClusterConnectorAccount and Secret of the file (create, adopt, update of which fields, nothing, or
error), and one for each stored object that reads a key a Secret of the file changes. It is
computed from what the API server stores, with no platform call, and shows field and key names,
never a value. Its rules (how a spec is compared, what each change makes the operator do) are in
plan_rules.py.

How it decides, and why:
- The API server judges each manifest of the operator's kinds first, with a server-side dry run
  (`dryRun=All`: a create when nothing is stored, else a replace of the stored object with the
  manifest's spec): the CRD's schema, defaults and pruning, its CEL rules (instanceID, and the
  fields pinned once an instance exists) and admission, as `kubectl apply` would meet them, with
  nothing written. A refusal is an `error` item with the server's message. Secrets are never sent
  in a dry run (their values would be in the request, which an audit policy may record): their
  shape is checked here (plan_secrets.py).
- The operator sends a PUT when the digest of its request differs from `status.appliedDigest`, an
  HMAC keyed with the operator's own secret key, which a tenant cannot read. So the plan compares
  specs instead: the stored one with the dry run's, both with the operator's defaults written out.
  The stored spec counts as applied when its status says so (Synced, for an account Ready, True
  with observedGeneration == generation); otherwise the detail says it is still pending.
- Secrets of the file are compared with the stored ones key by key, by content: the names of the
  keys changed, added and removed. A changed key that an object reads (a configuration
  `secretKeyRef`, an instance's or an account's credentials, spec.oauth's Secrets) changes that
  object too. This is
  the one place the plugin reads Secret values: those of the file's Secrets and their stored
  copies, compared in memory and never shown. Whether a Secret a new object needs exists is
  asked as metadata only.
- A new object that names a Secret or an account that is neither stored nor in the file is still
  `create`; the detail says the operator will wait for it.

Exit codes (`exit_code`, the rule of errors.py): 0 when every item is `nothing`, 1 when some
change is planned, 2 when some manifest is refused (an `error` item: invalid, or denied by
admission), 5 when the API server refused the user or could not answer (401, 403 but an admission
webhook's denial, 429, 5xx); the plan is then incomplete: 5 wins over 2, and both over a change.

It imports nothing of the operator: the plugin needs only the `kubernetes` client and Kubernetes
credentials: get, and create/update with dry run, on the objects and Secrets of the file; list of
the operator's kinds to find the readers of a changed Secret (skipped where forbidden).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import kubernetes.client
from kubernetes.client.rest import ApiException

from kubectl_openconnectors import errors, names, plan_secrets
from kubectl_openconnectors.errors import ExitCode
from kubectl_openconnectors.plan_rules import (
    ACCOUNT,
    ACTIONS,
    ADOPT,
    API_VERSION,
    API_VERSIONS,
    CLUSTER_ACCOUNT,
    CREATE,
    ERROR,
    INSTANCE,
    NOTHING,
    SECRET,
    UPDATE,
    Key,
    awaited,
    diff,
    instance_update,
    join,
    meta,
    new_instance,
    normal,
    pending_note,
    reads,
    replacing,
    steering,
)

__all__ = ["ACTIONS", "ADOPT", "CREATE", "ERROR", "NOTHING", "UPDATE", "Item", "compute", "exit_code"]

PLURALS = {
    INSTANCE: names.INSTANCE_PLURAL,
    ACCOUNT: names.ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT: names.CLUSTER_ACCOUNT_PLURAL,
}
TIMEOUT = 30.0  # seconds for one API server call
JSON = "application/json"
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"  # no data, no spec
ACCOUNT_CHECK = "the operator verifies the account secrets with one platform call"


@dataclass(frozen=True)
class Item:
    """What the operator would do with one object: `action` is one of ACTIONS; `fields` names what
    would change (spec paths, `metadata.annotations.<name>`, `data.<key>` of a Secret, or
    `Secret <name> keys: a, b` for the keys of a Secret the object reads), never a value.
    `refused_you`: an `error` because the API server refused the user or could not answer, not
    because of the manifest."""

    kind: str
    namespace: str
    name: str
    action: str
    fields: tuple[str, ...] = ()
    detail: str = ""
    refused_you: bool = False


def exit_code(items: Iterable[Item]) -> int:
    """0: every item is `nothing`; 1: some change is planned; 2: some manifest is refused (an
    `error`); 5: the API server refused the user or could not answer for some item."""
    listed = list(items)
    actions = {item.action for item in listed}
    if any(item.refused_you for item in listed):
        return ExitCode.API_ERROR
    if ERROR in actions:
        return ExitCode.USAGE
    return ExitCode.OK if actions <= {NOTHING} else ExitCode.NOT_READY


def compute(api: kubernetes.client.ApiClient, documents: list[dict[str, Any]], namespace: str) -> list[Item]:
    """The plan of `documents` (parsed manifests; `namespace` for those that name none), in the
    file's order, then the stored objects outside the file that a Secret of the file changes."""
    return _Planner(_Server(api), namespace, list(_flatten(documents))).run()


def _flatten(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """The documents, with the items of a `kind: List` in its place; empty documents dropped."""
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            yield from _flatten(doc.get("items") or [])
        elif isinstance(doc, dict):
            yield doc


class _Server:
    """The few API server calls of a plan, as plain JSON: one code path for every kind."""

    def __init__(self, api: kubernetes.client.ApiClient) -> None:
        self.api = api

    def call(
        self, method: str, path: str, body: Any = None, *, dry: bool = False, accept: str = JSON
    ) -> dict[str, Any]:
        result = self.api.call_api(
            path,
            method,
            query_params=[("dryRun", "All")] if dry else [],
            header_params={"Accept": accept, "Content-Type": JSON},
            body=body,
            response_types_map={200: "object", 201: "object"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _request_timeout=TIMEOUT,
        )
        return cast(dict[str, Any], result)

    def get(self, path: str, accept: str = JSON) -> dict[str, Any] | None:
        try:
            return self.call("GET", path, accept=accept)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def items(self, path: str) -> list[dict[str, Any]]:
        """A listing, or none where it may not be listed (the plan then names fewer objects)."""
        try:
            return list(self.call("GET", path).get("items") or [])
        except ApiException as error:
            if error.status in (403, 404):
                return []
            raise


def collection(kind: str, namespace: str) -> str:
    # Names from the user's file go into a URL path, quoted: they may not step out of it.
    if kind == SECRET:
        return f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
    if kind == CLUSTER_ACCOUNT:
        return f"/apis/{API_VERSION}/{PLURALS[kind]}"
    return f"/apis/{API_VERSION}/namespaces/{quote(namespace, safe='')}/{PLURALS[kind]}"


def resource(kind: str, namespace: str, name: str) -> str:
    return f"{collection(kind, namespace)}/{quote(name, safe='')}"


def server_message(error: ApiException) -> str:
    """The API server's own words for a refusal (its Status' message), else the HTTP status."""
    try:
        message = json.loads(error.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else f"HTTP {error.status} {error.reason}"


def refused(kind: str, namespace: str, name: str, error: ApiException) -> Item:
    """An `error` item with the server's words, marked when they refuse the user, not the manifest."""
    message = server_message(error)
    return Item(kind, namespace, name, ERROR, (), message, errors.refused_you(error.status, message))


class _Planner:
    def __init__(self, server: _Server, namespace: str, docs: list[dict[str, Any]]) -> None:
        self.server, self.namespace, self.docs = server, namespace, docs
        # Namespaces this file creates: its objects there cannot be dry-run before it exists.
        self.new_namespaces = {meta(d).get("name") for d in docs if d.get("kind") == "Namespace"}
        self.changed: dict[Key, frozenset[str]] = {}  # the keys each Secret of the file changes

    def run(self) -> list[Item]:
        planned: dict[int, Item] = {}
        for index, doc in enumerate(self.docs):  # Secrets first: the objects of the file read them
            if doc.get("kind") == SECRET and doc.get("apiVersion") == "v1":
                planned[index] = self._secret(doc)
        for index, doc in enumerate(self.docs):
            if doc.get("kind") in PLURALS:
                planned[index] = self._object(doc)
        items = [planned[i] for i in sorted(planned)]
        seen = {(i.kind, i.namespace, i.name) for i in items}
        return items + [i for i in self._readers() if (i.kind, i.namespace, i.name) not in seen]

    def _where(self, doc: Mapping[str, Any]) -> tuple[str, str, str]:
        kind = str(doc.get("kind"))
        namespace = "" if kind == CLUSTER_ACCOUNT else str(meta(doc).get("namespace") or self.namespace)
        return kind, namespace, str(meta(doc).get("name") or "")

    def _judged(self, doc: dict[str, Any], stored: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        """The object as the API server would store it (a dry run), and a note when it cannot say."""
        kind, namespace, name = self._where(doc)
        body = copy.deepcopy(doc)
        if kind != CLUSTER_ACCOUNT:
            body.setdefault("metadata", {})["namespace"] = namespace
        if stored is not None:
            return self.server.call(
                "PUT", resource(kind, namespace, name), replacing(stored, body), dry=True
            ), ""
        if (
            namespace in self.new_namespaces
            and self.server.get(f"/api/v1/namespaces/{quote(namespace, safe='')}") is None
        ):
            return (
                body,
                f"namespace {namespace} comes with this file: the server checks this object when applied",
            )
        return self.server.call("POST", collection(kind, namespace), body, dry=True), ""

    def _secret(self, doc: dict[str, Any]) -> Item:
        """Judged here and compared in memory: never sent to the API server (plan_secrets.py)."""
        _, namespace, name = self._where(doc)
        if problem := plan_secrets.problem(doc):
            return Item(SECRET, namespace, name, ERROR, (), problem)
        try:
            stored = self.server.get(resource(SECRET, namespace, name))
        except ApiException as error:
            return refused(SECRET, namespace, name, error)
        if stored is not None and (problem := plan_secrets.change_problem(stored, doc)):
            return Item(SECRET, namespace, name, ERROR, (), problem)
        changes = plan_secrets.changed_keys(stored, doc)
        keys = sorted(k for part in changes.values() for k in part)
        self.changed[(namespace, name)] = frozenset(keys)
        if stored is None:
            return Item(SECRET, namespace, name, CREATE, (), f"keys: {', '.join(keys)}")
        fields = tuple(f"data.{k}" for k in keys)
        if not fields:
            return Item(SECRET, namespace, name, NOTHING, (), "the same keys and content as stored")
        words = [f"{what}: {', '.join(part)}" for what, part in changes.items() if part]
        return Item(SECRET, namespace, name, UPDATE, fields, join(words))

    def _secret_fields(self, kind: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, frozenset[str]]:
        """`Secret <name> keys: ...` for each Secret of the file whose changed keys the object reads."""
        touched: dict[str, frozenset[str]] = {}
        for key, read in reads(kind, namespace, spec).items():
            keys = read & self.changed.get(key, frozenset())
            if keys:
                shown = key[1] if key[0] == namespace else f"{key[0]}/{key[1]}"
                touched[f"Secret {shown} keys: {', '.join(sorted(keys))}"] = keys
        return touched

    def _object(self, doc: dict[str, Any]) -> Item:
        kind, namespace, name = self._where(doc)
        if doc.get("apiVersion") not in API_VERSIONS:
            wrong = f"apiVersion {doc.get('apiVersion')!r} is not {API_VERSION}"
            return Item(kind, namespace, name, ERROR, (), wrong)
        doc = {**doc, "apiVersion": API_VERSION}  # the same schema: dry-run as the served version
        if not name:
            return Item(kind, namespace, name, ERROR, (), "the manifest has no metadata.name")
        try:
            stored = self.server.get(resource(kind, namespace, name))
            after, note = self._judged(doc, stored)
        except ApiException as error:
            return refused(kind, namespace, name, error)
        if stored is None:
            return self._new(kind, namespace, name, after, note)
        return self._existing(kind, namespace, name, stored, after)

    def _new(self, kind: str, namespace: str, name: str, after: dict[str, Any], note: str) -> Item:
        spec = after.get("spec") or {}
        action, detail = CREATE, ACCOUNT_CHECK
        if kind == INSTANCE:
            action, detail = new_instance(name, spec, meta(after).get("annotations") or {})
        needed = [(SECRET, ns, n) for ns, n in awaited(kind, namespace, spec)]
        ref = spec.get("accountRef") or {}
        if ref.get("kind") in PLURALS and ref.get("name"):
            needed.append((ref["kind"], "" if ref["kind"] == CLUSTER_ACCOUNT else namespace, ref["name"]))
        missing = sorted(f"{k} {n}" for k, ns, n in needed if not self._exists(k, ns, n))
        waits = f"waits for {', '.join(missing)}: in neither the cluster nor the file" if missing else ""
        return Item(kind, namespace, name, action, (), join([detail, waits, note]))

    def _exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether an object the new one needs is stored or comes with the file."""
        if any(self._where(d) == (kind, namespace, name) for d in self.docs):
            return True
        try:  # as metadata: whether a Secret exists needs none of its values
            return self.server.get(resource(kind, namespace, name), METADATA) is not None
        except ApiException:
            return True  # it may not be read: the plan does not claim it is missing

    def _existing(
        self, kind: str, namespace: str, name: str, stored: dict[str, Any], after: dict[str, Any]
    ) -> Item:
        before_spec = normal(kind, namespace, name, stored.get("spec") or {})
        after_spec = normal(kind, namespace, name, after.get("spec") or {})
        spec_fields = diff(before_spec, after_spec, "spec")
        steered = steering(stored, after)
        secrets = self._secret_fields(kind, namespace, after.get("spec") or {})
        fields = (*spec_fields, *steered, *secrets)
        pending = pending_note(stored)
        if not fields:
            return Item(kind, namespace, name, NOTHING, (), pending or "as stored, and applied")
        if kind == INSTANCE:
            what = instance_update(stored, before_spec, after_spec, spec_fields, secrets)
        else:
            what = f"{ACCOUNT_CHECK} and wakes its instances"
        return Item(kind, namespace, name, UPDATE, fields, join([what, *steered.values(), pending]))

    def _readers(self) -> list[Item]:
        """Stored objects, not in the file, that read a key a Secret of the file changes."""
        namespaces = sorted({ns for (ns, _), keys in self.changed.items() if keys})
        if not namespaces:
            return []
        stored = [(CLUSTER_ACCOUNT, o) for o in self.server.items(collection(CLUSTER_ACCOUNT, ""))]
        for namespace in namespaces:
            for kind in (ACCOUNT, INSTANCE):
                stored += [(kind, o) for o in self.server.items(collection(kind, namespace))]
        items = []
        for kind, obj in stored:
            _, namespace, name = self._where({**obj, "kind": kind})
            secrets = self._secret_fields(kind, namespace, obj.get("spec") or {})
            if not secrets:
                continue
            spec = normal(kind, namespace, name, obj.get("spec") or {})
            what = instance_update(obj, spec, spec, [], secrets) if kind == INSTANCE else ACCOUNT_CHECK
            items.append(Item(kind, namespace, name, UPDATE, tuple(secrets), join([what, "not in the file"])))
        return items
