"""The operator's own settings, typed, with the defaults a production install should start from.

They come from command-line flags or the matching `OCO_*` environment variables (see
`run.py`), so that the Helm chart can set them either way.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_API_URL = "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2"
# The SAP Open Connectors API hosts (open-connectors-api.md, "Hosts"): production with and without
# a region label, the Cloud Foundry trials, and the old Neo trial. Pattern syntax: domain/hosts.py.
DEFAULT_ALLOWED_API_HOSTS = (
    "api.openconnectors.ext.hana.ondemand.com",
    "api.openconnectors.*.ext.hana.ondemand.com",
    "api.openconnectors.trial.*.ext.hana.ondemand.com",
    "api.openconnectors.ext.hanatrial.ondemand.com",
)
DIGEST_KEY_SECRET = "open-connectors-operator-digest-key"


@dataclass(frozen=True)
class Settings:
    default_api_url: str = DEFAULT_API_URL
    """Platform API base URL for objects that do not set `spec.apiURL`."""

    allowed_api_hosts: tuple[str, ...] = DEFAULT_ALLOWED_API_HOSTS
    """Host patterns the operator may send requests (and account secrets) to; see domain/hosts.py."""

    allow_insecure_http: bool = False
    """Whether plain http API URLs are allowed (the local simulator only)."""

    default_account: str | None = None
    """ClusterConnectorAccount for instances that name neither an account nor credentials."""

    account_secrets_namespaces: tuple[str, ...] = ()
    """Namespaces besides the operator's own where a ClusterConnectorAccount's Secret may live."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""

    cluster_name: str | None = None
    """This cluster's name on the platform accounts it uses: every instance created or adopted also
    carries a claim tag (cluster name, namespace, object name), so that a cluster rebuilt from the
    same manifests finds its instances instead of creating new ones. Two live clusters must never
    share one name on one account. None: no claims (a rebuild creates new instances)."""

    operator_namespace: str | None = None
    """The operator's own namespace, where its digest key Secret lives. None: the in-cluster
    ServiceAccount's namespace, else the kubeconfig context's, else `default`."""

    digest_key_secret: str = DIGEST_KEY_SECRET
    """The Secret (in `operator_namespace`) holding the HMAC key of the digests in status."""

    resync_interval: float = 600.0
    """Seconds between checks of a Ready instance against the platform (valid, disabled, token).
    Each object's first check after a start is spread over this window, so restarts are quiet."""

    max_in_flight: int = 32
    """Open Connectors calls in flight at once, across all objects (quotas are per account)."""

    max_in_flight_per_host: int = 8
    """Of those, calls in flight to one platform host at once: a slow or hostile host holds at most
    this many of the global slots, and the others keep theirs."""

    request_timeout: float = 30.0
    """Seconds one Open Connectors call may take in all (connect, send, the whole answer)."""

    backoff_base: float = 2.0
    """First retry delay in seconds for transient failures; doubles per attempt, with jitter."""

    backoff_cap: float = 300.0
    """Longest retry delay in seconds."""

    log_format: str = "text"
    """`text` or `json`."""

    log_level: str = "INFO"

    health_port: int | None = 8080
    """Port of the liveness endpoint (`/healthz`); None disables it."""

    metrics_port: int | None = 9090
    """Port of the Prometheus metrics endpoint (`/metrics`); None disables it."""

    object_metrics: bool = True
    """Export per-object series (each object's conditions, identity and platform state)."""

    object_metrics_max_series: int = 50_000
    """At most this many per-object series in one export, shared fairly among namespaces; the
    objects past a namespace's share are counted as dropped (metrics/objects.py)."""

    peering: str | None = None
    """Name of the kopf peering objects (kube/peering.py): a second copy of the operator with the same
    name pauses while this one runs. None: standalone, no peering."""
