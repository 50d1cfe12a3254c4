"""The `status` tree: accounts -> instances -> token Secrets -> the Pods that use them.

Pure: it takes what `reads.py` fetched (plain dicts) and returns nodes; rendering is render.py's.
An instance hangs under the account its credentials come from (objects.account_of): a
ConnectorAccount or ClusterConnectorAccount, or one of two grouping lines, own credentials
(`spec.credentialsSecretRef`) and the operator's default account while it is not resolved yet.
A Pod hangs under a token Secret when it mounts it (a `secret` volume or a `projected` source)
or reads it into its environment (`envFrom` or an `env` entry's `secretKeyRef`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubectl_openconnectors import names, objects
from kubectl_openconnectors.objects import Obj

# The grouping lines (no object of their own) and the order of the kinds at the top level.
OWN_CREDENTIALS = "Credentials"
DEFAULT_ACCOUNT = "DefaultAccount"
TOP_ORDER = (names.CLUSTER_ACCOUNT_KIND, names.ACCOUNT_KIND, OWN_CREDENTIALS, DEFAULT_ACCOUNT)
GROUP_TITLES = {
    OWN_CREDENTIALS: "own credentials (spec.credentialsSecretRef)",
    DEFAULT_ACCOUNT: "default account (the operator's --default-account)",
}


@dataclass
class Node:
    """One line of the tree. `ready`, `synced` and `reason` are "" where they mean nothing (a
    Secret, a grouping line); `created` is the object's creationTimestamp ("" for none)."""

    kind: str
    namespace: str
    name: str
    ready: str = ""
    synced: str = ""
    reason: str = ""
    created: str = ""
    detail: str = ""
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form (`-o json|yaml`): always the same keys, children last."""
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "ready": self.ready,
            "synced": self.synced,
            "reason": self.reason,
            "created": self.created,
            "detail": self.detail,
            "children": [child.as_dict() for child in self.children],
        }

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Inputs:
    """What the tree is built from. `token_secrets` (metadata only) and `pods` are None when the
    caller could not list them: the tree then says nothing about them rather than "missing"."""

    instances: list[Obj]
    accounts: list[Obj]
    token_secrets: list[Obj] | None
    pods: list[Obj] | None
    all_accounts: bool  # also cluster accounts no listed instance uses (-A)


def build(inputs: Inputs) -> list[Node]:
    """The top-level nodes, accounts first (cluster, then namespaced), then the grouping lines."""
    secrets = None if inputs.token_secrets is None else {_key(s): s for s in inputs.token_secrets}
    users = secret_users(inputs.pods or [])
    tops: dict[tuple[str, str, str], Node] = {}
    for account in inputs.accounts:  # a namespace's own accounts are shown even when unused
        if inputs.all_accounts or account.get("kind") == names.ACCOUNT_KIND:
            tops[_account_key(account)] = account_node(account)
    known = {_account_key(account): account for account in inputs.accounts}
    for instance in sorted(inputs.instances, key=_key):
        key = objects.account_of(instance)
        top = tops.get(key) or tops.setdefault(key, _top_node(key, known.get(key)))
        top.children.append(instance_node(instance, secrets, users if inputs.pods is not None else None))
    return sorted(tops.values(), key=lambda n: (TOP_ORDER.index(n.kind), n.namespace, n.name))


def _top_node(key: tuple[str, str, str], account: Obj | None) -> Node:
    kind, namespace, name = key
    if account is not None:
        return account_node(account)
    if kind == "Secret":
        return Node(OWN_CREDENTIALS, "", "", detail=GROUP_TITLES[OWN_CREDENTIALS])
    if kind == "Default":
        return Node(DEFAULT_ACCOUNT, "", "", detail=GROUP_TITLES[DEFAULT_ACCOUNT])
    # Named by instances but not listed: absent, or not ours to list (RBAC).
    return Node(kind, namespace, name, reason="NotFound", detail="not found, or not permitted to read")


def _account_key(account: Obj) -> tuple[str, str, str]:
    kind = str(account.get("kind") or "")
    namespace = "" if kind == names.CLUSTER_ACCOUNT_KIND else str(objects.meta(account).get("namespace"))
    return kind, namespace, str(objects.meta(account).get("name"))


def _key(obj: Obj) -> tuple[str, str]:
    return str(objects.meta(obj).get("namespace") or ""), str(objects.meta(obj).get("name") or "")


def account_node(account: Obj) -> Node:
    kind, namespace, name = _account_key(account)
    synced = objects.condition(account, "Synced").get("status", "")
    return Node(
        kind,
        namespace,
        name,
        ready=str(objects.condition(account, "Ready").get("status", "Unknown")),
        synced=str(synced),
        reason=objects.reason(account),
        created=str(objects.meta(account).get("creationTimestamp") or ""),
    )


def instance_node(
    instance: Obj, secrets: dict[tuple[str, str], Obj] | None, users: dict[tuple[str, str], list[Node]] | None
) -> Node:
    namespace, name = _key(instance)
    kind, _, credentials = objects.account_of(instance)
    node = Node(
        names.INSTANCE_KIND,
        namespace,
        name,
        ready=str(objects.condition(instance, "Ready").get("status", "Unknown")),
        synced=str(objects.condition(instance, "Synced").get("status", "Unknown")),
        reason=objects.reason(instance),
        created=str(objects.meta(instance).get("creationTimestamp") or ""),
        detail=_instance_detail(instance, kind, credentials),
    )
    node.children.append(secret_node(namespace, objects.token_secret_name(instance), secrets, users))
    return node


def _instance_detail(instance: Obj, account_kind: str, credentials: str) -> str:
    parts = [f"Secret/{credentials}"] if account_kind == "Secret" else []
    if objects.deleting(instance):
        parts.append("deleting")
    if objects.paused(instance):
        parts.append("paused")
    if (instance_id := objects.status(instance).get("instanceID")) is not None:
        parts.append(f"instance {instance_id}")
    return ", ".join(parts)


def secret_node(
    namespace: str,
    name: str,
    secrets: dict[tuple[str, str], Obj] | None,
    users: dict[tuple[str, str], list[Node]] | None,
) -> Node:
    node = Node("Secret", namespace, name)
    if secrets is not None:
        found = secrets.get((namespace, name))
        node.created = str(objects.meta(found).get("creationTimestamp") or "") if found else ""
        node.reason = "" if found else "NotFound"
    node.children = list((users or {}).get((namespace, name), []))
    return node


def secret_users(pods: Iterable[Obj]) -> dict[tuple[str, str], list[Node]]:
    """For each (namespace, Secret name), the Pods that use it, as nodes, sorted by name."""
    users: dict[tuple[str, str], list[Node]] = {}
    for pod in sorted(pods, key=_key):
        namespace, _ = _key(pod)
        for secret, how in sorted(references(pod).items()):
            users.setdefault((namespace, secret), []).append(pod_node(pod, how))
    return users


def pod_node(pod: Obj, how: list[str]) -> Node:
    namespace, name = _key(pod)
    ready = next(
        (
            str(c.get("status"))
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready"
        ),
        "Unknown",
    )
    phase = str((pod.get("status") or {}).get("phase") or "")
    created = str(objects.meta(pod).get("creationTimestamp") or "")
    return Node("Pod", namespace, name, ready=ready, reason=phase, created=created, detail=", ".join(how))


def references(pod: Obj) -> dict[str, list[str]]:
    """The Secrets a Pod uses, each with how: `volume`, `projected`, `envFrom`, `env`."""
    found: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for secret, how in [*_volume_references(spec), *_environment_references(spec)]:
        found.setdefault(secret, set()).add(how)
    return {secret: sorted(how) for secret, how in found.items()}


def _volume_references(spec: Obj) -> Iterator[tuple[str, str]]:
    for volume in spec.get("volumes") or []:
        if (secret := (volume.get("secret") or {}).get("secretName")) is not None:
            yield secret, "volume"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (secret := (source.get("secret") or {}).get("name")) is not None:
                yield secret, "projected"


def _environment_references(spec: Obj) -> Iterator[tuple[str, str]]:
    for container in _containers(spec):
        for source in container.get("envFrom") or []:
            if (secret := (source.get("secretRef") or {}).get("name")) is not None:
                yield secret, "envFrom"
        for variable in container.get("env") or []:
            if (
                secret := ((variable.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
            ) is not None:
                yield secret, "env"


def _containers(spec: Obj) -> Iterator[Obj]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(kind) or []


def not_ready(nodes: Iterable[Node]) -> list[Node]:
    """Instances and accounts in the tree whose Ready is False or Unknown (what `status` exits 1
    for). An account only named, not read (not found, or not permitted), has no Ready to judge:
    its instances say what is wrong."""
    kinds = {names.INSTANCE_KIND, names.ACCOUNT_KIND, names.CLUSTER_ACCOUNT_KIND}
    return [n for top in nodes for n in top.walk() if n.kind in kinds and n.ready in ("False", "Unknown")]
