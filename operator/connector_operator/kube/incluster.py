"""In-cluster login the way client-go does it: the API server from the environment the kubelet sets.

kopf's `login_with_service_account()` always connects to `https://kubernetes.default.svc`, which
needs the cluster DNS. A pod without it (host networking with `dnsPolicy: Default`, some hardened
clusters, a broken CoreDNS) then retries `GET https://kubernetes.default.svc/apis` forever with a
DNS error. Every kubelet also sets `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` to the
API server's Service address, and client-go (so every Go operator and kubectl in a pod) connects
there. So do we: when both are set and the ServiceAccount token is mounted, the server is
`https://<host>:<port>`; otherwise the caller falls back to kopf's own behaviour.

The token is read on every login, as kopf does: a projected token is rotated by the kubelet, and
the operator logs in again on a 401 (kube/api.py and kopf).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path

import kopf

# Where the kubelet mounts the ServiceAccount's token, CA and namespace (the same path kopf and
# client-go read).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOST_ENV = "KUBERNETES_SERVICE_HOST"
PORT_ENV = "KUBERNETES_SERVICE_PORT"
# kopf ranks the credentials of its login handlers; ours stand where its ServiceAccount login would.
PRIORITY = 10


def server_from_environment(environ: Mapping[str, str]) -> str | None:
    """`https://host:port` from the kubelet's variables, or None when either is missing or empty.
    An IPv6 address is bracketed, as Go's net.JoinHostPort does for client-go."""
    host, port = environ.get(HOST_ENV, "").strip(), environ.get(PORT_ENV, "").strip()
    if not host or not port:
        return None
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"https://{host}:{port}"


def login_from_environment(
    *,
    trust_env: bool,
    environ: Mapping[str, str] = os.environ,
    account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> kopf.ConnectionInfo | None:
    """The ServiceAccount's credentials for the API server named by the environment, or None when
    this is not a pod (no variables, or no mounted token). Blocking: it reads files."""
    server = server_from_environment(environ)
    token_path = account_dir / "token"
    if server is None or not token_path.is_file():
        return None
    token = token_path.read_text(encoding="utf-8").strip()
    namespace_path, ca_path = account_dir / "namespace", account_dir / "ca.crt"
    namespace = namespace_path.read_text(encoding="utf-8").strip() if namespace_path.is_file() else ""
    return kopf.ConnectionInfo(
        server=server,
        ca_path=str(ca_path) if ca_path.is_file() else None,
        token=token or None,
        default_namespace=namespace or None,
        trust_env=trust_env,
        priority=PRIORITY,
    )
