"""kopf peering for this operator: its peering objects, and which of two copies goes first.

Two copies of the operator on the same objects would fight (a stuck old pod during a rollout,
`replicas: 2` by mistake, a developer's copy against the cluster). kopf's peering makes all but
one pause: every copy writes a keep-alive with its priority into a peering object (a `KopfPeering`
in each watched namespace, or one `ClusterKopfPeering` when the whole cluster is watched), and a
copy that sees a higher priority than its own stops its watches and daemons until that record is
gone: withdrawn at a clean stop, or expired after the record's lifetime (60 s) after a crash.

kopf pauses copies of *equal* priority all together, so the priority must tell copies apart:
`priority_by_age()` ranks an older copy above a newer one. The copy that is working keeps working,
and the newcomer waits, which is what a rollout or an accidental second replica wants.

kopf leaves creating the peering object to the user, and with a named peering a missing object
leaves the operator paused without a word (kopf logs it at DEBUG only). So `ensure_objects()`
creates them at start-up, and a missing CRD or permission stops the start with a message.
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
MANAGED_BY = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
# Microseconds since the epoch stay below 2**52 until the year 2112, so the priority is positive,
# and exact in any JSON parser (kopf keeps it in the peering object's status).
_PRIORITY_CEILING = 2**52


class PeeringUnavailable(Exception):
    """A peering object cannot be created: its CRD is not installed (the chart's crds/ have it;
    kopf does not install it), or its namespace does not exist."""


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


def collection_path(namespace: str | None) -> str:
    """Where kopf looks for the peering object: a namespace's KopfPeerings, or (None) the cluster's
    ClusterKopfPeerings."""
    base = f"/apis/{GROUP}/{VERSION}"
    return f"{base}/namespaces/{namespace}/kopfpeerings" if namespace else f"{base}/clusterkopfpeerings"


async def ensure_objects(api: KubeAPI, name: str, namespaces: tuple[str, ...]) -> None:
    """Create the peering objects for these namespaces (none: cluster-wide) that do not exist yet.
    Another copy may create one at the same moment: a conflict means it exists. Raises
    PeeringUnavailable when the kind or the namespace is missing, KubeError for other refusals."""
    for namespace in namespaces or (None,):
        kind = "KopfPeering" if namespace else "ClusterKopfPeering"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "labels": MANAGED_BY},
        }
        try:
            created = await api.request("POST", collection_path(namespace), body=body)
        except KubeError as error:
            if error.status != 409:
                raise
            continue
        if created is None:  # 404: the kind is not served, or the namespace does not exist
            where = f"in namespace {namespace}" if namespace else "cluster-wide"
            raise PeeringUnavailable(
                f"cannot create {kind} {name} {where}: not found. Is the CRD {kind.lower()}s.{GROUP} "
                "installed (the Helm chart's crds/ have it)? Or run without --peering"
            )
