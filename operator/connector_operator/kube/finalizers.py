"""Putting kopf's finalizer back on a ConnectorInstance that lacks it, and reading one afresh.

kopf adds the finalizer with one patch when it first sees an object, and does not try again
until the object changes. A patch that fails, as one does while the API server rebuilds a
CRD's storage after the CRD changed (it answers 404 for a moment), leaves an object without a
finalizer, and its deletion would then never reach the operator: the remote instance would be
left behind. The passes put it back (reconciler/instance.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.kube.api import MERGE_PATCH, KubeAPI


def instance_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


async def read_instance(api: KubeAPI, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as stored now; None when it is gone."""
    return await api.request("GET", instance_path(namespace, name))


async def add_finalizer(
    api: KubeAPI, namespace: str, name: str, finalizer: str, current: Sequence[str], resource_version: str
) -> bool:
    """Add `finalizer` to the object as it was at `resource_version` (a merge patch replaces the
    whole list, so the version guards the others' finalizers: a 409 if it changed). False when
    the object is gone."""
    path = instance_path(namespace, name)
    patch = {"metadata": {"finalizers": [*current, finalizer], "resourceVersion": resource_version}}
    return await api.request("PATCH", path, body=patch, content_type=MERGE_PATCH) is not None
