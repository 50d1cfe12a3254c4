"""What `status` and `why` read from the API server, and how little: our objects, the token
Secrets' metadata (never their values), the Pods of the namespaces shown, an object's Events.

A read the user's RBAC does not allow (or a kind whose CRD is not installed) leaves a note
instead of failing the command: someone who may read ConnectorInstances but not Pods still gets
the tree, without its Pods. Only the instances themselves are required.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kubectl_openconnectors import names, objects, tree
from kubectl_openconnectors.errors import ExitCode, PluginError
from kubectl_openconnectors.kube import METADATA_LIST, Kube, core_path, custom_path
from kubectl_openconnectors.objects import Obj

T = TypeVar("T")
TOKEN_SECRETS = {"labelSelector": f"{names.MANAGED_BY_LABEL}={names.MANAGED_BY_VALUE}"}
# Statuses that make an optional read a note: not permitted, or the resource is unknown.
TOLERATED = (401, 403, 404)


def optional(read: Callable[[], T], what: str, notes: list[str]) -> T | None:
    try:
        return read()
    except PluginError as error:
        if error.status not in TOLERATED:
            raise
        notes.append(f"{what} not shown: {error}")
        return None


def for_status(kube: Kube, namespace: str | None) -> tuple[tree.Inputs, list[str]]:
    """The tree's inputs for one namespace, or for the cluster (None), and the notes."""
    notes: list[str] = []
    try:
        instances = kube.items(custom_path(names.INSTANCE_PLURAL, namespace))
    except PluginError as error:
        if error.code is not ExitCode.NOT_FOUND:
            raise
        raise PluginError(
            f"this cluster does not serve {names.INSTANCE_PLURAL}.{names.GROUP}: is the CRD installed?",
            ExitCode.API_ERROR,
            404,
        ) from None
    accounts = [
        *_listed(kube, names.ACCOUNT_KIND, custom_path(names.ACCOUNT_PLURAL, namespace), notes),
        *_listed(kube, names.CLUSTER_ACCOUNT_KIND, custom_path(names.CLUSTER_ACCOUNT_PLURAL, None), notes),
    ]
    secrets = optional(
        lambda: kube.items(core_path("secrets", namespace), TOKEN_SECRETS, METADATA_LIST),
        "token Secrets",
        notes,
    )
    pods = optional(lambda: kube.items(core_path("pods", namespace)), "Pods", notes) if instances else []
    return tree.Inputs(instances, accounts, secrets, pods, all_accounts=namespace is None), notes


def _listed(kube: Kube, kind: str, path: str, notes: list[str]) -> list[Obj]:
    """An account kind's objects, if the user may list them. List items of a custom resource carry
    their kind; it is set anyway, the tree relies on it."""
    items = optional(lambda: kube.items(path), f"{kind}s", notes)
    return [{**item, "kind": kind} for item in items or []]


def instance(kube: Kube, namespace: str, name: str) -> Obj:
    """The ConnectorInstance, or PluginError NOT_FOUND naming it."""
    try:
        found: Obj = kube.get(custom_path(names.INSTANCE_PLURAL, namespace, name))
    except PluginError as error:
        if error.code is ExitCode.NOT_FOUND:
            raise PluginError(
                f'{names.INSTANCE_PLURAL}.{names.GROUP} "{name}" not found in namespace {namespace}',
                ExitCode.NOT_FOUND,
                404,
            ) from None
        raise
    return found


def events(kube: Kube, obj: Obj, notes: list[str]) -> list[dict[str, Any]]:
    """The Events about this very object (its UID: not those of an earlier one of that name)."""
    meta = objects.meta(obj)
    query = {"fieldSelector": f"involvedObject.uid={meta.get('uid')}"}
    found = optional(
        lambda: kube.items(core_path("events", str(meta.get("namespace"))), query), "Events", notes
    )
    return found or []
