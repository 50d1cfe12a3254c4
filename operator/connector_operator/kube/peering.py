"""kopf peering for this operator: its one peering object, and which of two copies goes first.

Two copies of the operator on the same objects would fight (a stuck old pod during a rollout,
`replicas: 2` by mistake, a developer's copy against the cluster). kopf's peering makes all but
one pause: every copy writes a keep-alive with its priority into a peering object, and a copy that
sees a higher priority than its own stops its watches and daemons until that record is gone:
withdrawn at a clean stop, or expired after the record's lifetime (60 s) after a crash.

The peering object is one `ClusterKopfPeering`, for the namespaced install too (handlers/setup.py
tells kopf so). kopf's own choice for a namespaced operator is a `KopfPeering` in every watched
namespace, and any record in any of them pauses the whole operator (kopf pauses when one peering
object of several says so): whoever may write `kopfpeerings` in one tenant namespace (a Role on
`*` grants it) could stop the operator for every tenant, with a record of a high priority and a
lifetime of years. A cluster-scoped object is out of reach of every namespaced grant: only cluster
administrators and the operator (its ClusterRole names this one object) may write it. One object is
also one watch and one keep-alive, not one per namespace. The cost: two installs with the same
peering name pause each other even on disjoint namespaces, which one install per cluster (the
README's rule: accounts are cluster-wide) never meets.

kopf pauses copies of *equal* priority all together, so the priority must tell copies apart:
`priority_by_age()` ranks an older copy above a newer one. The copy that is working keeps working,
and the newcomer waits, which is what a rollout or an accidental second replica wants.

kopf leaves creating the peering object to the user, and with a named peering a missing object
leaves the operator paused without a word (kopf logs it at DEBUG only). So `ensure_object()`
creates it at start-up, and a missing CRD or permission stops the start with a message.
"""

from __future__ import annotations

import datetime
import getpass
import os
import secrets
import socket

from connector_operator.kube.api import KubeAPI, KubeError

GROUP = "kopf.dev"
VERSION = "v1"
KIND = "ClusterKopfPeering"
PLURAL = "clusterkopfpeerings"
COLLECTION = f"/apis/{GROUP}/{VERSION}/{PLURAL}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
# Microseconds since the epoch stay below 2**52 until the year 2112, so the priority is positive,
# and exact in any JSON parser (kopf keeps it in the peering object's status).
_PRIORITY_CEILING = 2**52


class PeeringUnavailable(Exception):
    """The peering object cannot be created: its CRD is not installed (the chart's crds/ have it;
    kopf does not install it)."""


def priority_by_age(started: float) -> int:
    """A kopf peering priority from the process's start (seconds since the epoch): older is higher.
    Two copies started in the same microsecond would pause each other (equal priority) until one
    restarts; nothing starts two copies that close together."""
    return _PRIORITY_CEILING - int(started * 1_000_000)


def own_identity() -> str:
    """This copy's name in the peering records (and in kopf's "Pausing operations in favour of"):
    POD_ID, which the chart sets to the pod's name, else kopf's own form, user@host/start/random.
    kopf finds the user with getpass, which fails for a uid without a passwd entry, as in a pod
    (the kubelet adds none, and the image has none for 65532): the uid stands in for it then."""
    pod = os.environ.get("POD_ID")
    if pod:
        return pod
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    started = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S")
    return f"{user}@{socket.gethostname()}/{started}/{secrets.token_hex(2)}"


def object_path(name: str) -> str:
    """The peering object kopf and kube/keepalive.py keep their records in."""
    return f"{COLLECTION}/{name}"


def name_selector(name: str) -> str:
    """The field selector of kopf's list and watch of the peering objects: this one only, which
    is all the operator's ClusterRole lets it read (RBAC narrows a list or watch by name only when
    the request selects that name)."""
    return f"metadata.name={name}"


async def ensure_object(api: KubeAPI, name: str) -> None:
    """Create the peering object unless it exists. Another copy may create it at the same moment:
    a conflict means it exists. Raises PeeringUnavailable when the kind is not served, KubeError
    for other refusals."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "labels": MANAGED_BY},
    }
    try:
        created = await api.request("POST", COLLECTION, body=body)
    except KubeError as error:
        if error.status != 409:
            raise
        return
    if created is None:  # 404: the kind is not served
        raise PeeringUnavailable(
            f"cannot create {KIND} {name}: not found. Is the CRD {PLURAL}.{GROUP} installed (the Helm "
            "chart's crds/ have it)? Or run without --peering"
        )
