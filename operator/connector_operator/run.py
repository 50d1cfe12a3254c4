"""`open-connectors-operator run`: flags and environment into Settings, then kopf.

Standalone unless `--peering` names a kopf peering object (the Helm chart does): then a second copy
of the operator pauses while the first runs (kube/peering.py). kopf runs under
`shutdown.run_operator`, which bounds the time a stop takes (shutdown.py).
"""

from __future__ import annotations

import logging
import time

import click
import kopf

from connector_operator import logcontext, shutdown
from connector_operator.domain.hosts import HostPolicy, parse_patterns
from connector_operator.domain.ownership import is_cluster_name
from connector_operator.kube import tlsbuffers
from connector_operator.kube.keepalive import Peer
from connector_operator.kube.peering import own_identity, priority_by_age
from connector_operator.settings import (
    DEFAULT_ALLOWED_API_HOSTS,
    DEFAULT_API_URL,
    DIGEST_KEY_SECRET,
    Settings,
)


def _namespaces(values: tuple[str, ...]) -> tuple[str, ...]:
    # Accept repeated flags and comma- or space-separated lists (the environment variable form).
    return tuple(sorted({n for value in values for n in value.replace(",", " ").split() if n}))


def _cluster_name(value: str) -> str:
    value = value.strip()
    if value and not is_cluster_name(value):
        raise click.BadParameter(
            f"{value!r} is not a cluster name: lowercase letters, digits and '-', at most 63 characters, "
            "starting and ending with a letter or digit"
        )
    return value


def _host_patterns(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    patterns = tuple(value.replace(",", " ").split())
    try:
        parse_patterns(patterns)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return patterns


# Our event handlers run on every watch event, most of them uneventful; kopf would log each one.
_WATCH_HANDLERS = ("'instance_changed'", "'secret_changed'", "'secret_cache'", "'secret_users'")


def _quiet_watch_handlers(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not (message.startswith(("Handler ", "Indexer ")) and any(h in message for h in _WATCH_HANDLERS))


@click.command("run")
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    envvar="OCO_NAMESPACES",
    help="Namespace to watch (repeatable, or comma-separated). Default: all namespaces.",
)
@click.option(
    "--default-api-url",
    envvar="OCO_DEFAULT_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="Platform API URL for objects without spec.apiURL.",
)
@click.option(
    "--allowed-api-hosts",
    envvar="OCO_ALLOWED_API_HOSTS",
    default=",".join(DEFAULT_ALLOWED_API_HOSTS),
    show_default=True,
    callback=_host_patterns,
    help="Platform API hosts the operator may call, comma- or space-separated: `host`, `host:port` "
    "or `host:*`; `*` matches within one DNS label; without a port only the default port matches.",
)
@click.option(
    "--allow-insecure-http/--no-allow-insecure-http",
    envvar="OCO_ALLOW_INSECURE_HTTP",
    default=False,
    show_default=True,
    help="Allow plain http API URLs (for a local simulator; never in production).",
)
@click.option(
    "--operator-namespace",
    envvar="OCO_OPERATOR_NAMESPACE",
    default=None,
    help="The operator's own namespace, for its digest key Secret. Default: the in-cluster "
    "ServiceAccount's namespace, else the kubeconfig context's, else `default`.",
)
@click.option(
    "--digest-key-secret",
    envvar="OCO_DIGEST_KEY_SECRET",
    default=DIGEST_KEY_SECRET,
    show_default=True,
    help="Secret in the operator's namespace holding the key of the digests in status (created if missing).",
)
@click.option(
    "--account-secrets-namespaces",
    envvar="OCO_ACCOUNT_SECRETS_NAMESPACES",
    default="",
    help="Namespaces, comma- or space-separated, where a ClusterConnectorAccount's credentials Secret "
    "may live besides the operator's own namespace.",
)
@click.option(
    "--default-account",
    envvar="OCO_DEFAULT_ACCOUNT",
    default=None,
    help="ClusterConnectorAccount for ConnectorInstances that name neither spec.accountRef nor "
    "spec.credentialsSecretRef.",
)
@click.option(
    "--cluster-name",
    envvar="OCO_CLUSTER_NAME",
    default="",
    callback=lambda _ctx, _param, value: _cluster_name(value),
    help="This cluster's name on the platform: instances also carry a claim tag (cluster name, "
    "namespace, object name) so that a cluster rebuilt from Git reclaims them instead of creating new "
    "ones. Never share one name between two live clusters on one account. Empty: no claims.",
)
@click.option(
    "--log-format",
    envvar="OCO_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--log-level",
    envvar="OCO_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
@click.option(
    "--resync-interval",
    envvar="OCO_RESYNC_INTERVAL",
    type=click.FloatRange(min=5),
    default=600.0,
    show_default=True,
    help="Seconds between checks of each Ready instance against the platform.",
)
@click.option(
    "--max-in-flight",
    envvar="OCO_MAX_IN_FLIGHT",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Open Connectors calls in flight at once.",
)
@click.option(
    "--max-in-flight-per-host",
    envvar="OCO_MAX_IN_FLIGHT_PER_HOST",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Of those, Open Connectors calls in flight to one platform host at once.",
)
@click.option(
    "--health-port",
    envvar="OCO_HEALTH_PORT",
    type=click.IntRange(min=0, max=65535),
    default=8080,
    show_default=True,
    help="Port of the /healthz liveness endpoint; 0 disables it.",
)
@click.option(
    "--metrics-port",
    envvar="OCO_METRICS_PORT",
    type=click.IntRange(min=0, max=65535),
    default=9090,
    show_default=True,
    help="Port of the Prometheus /metrics endpoint; 0 disables it.",
)
@click.option(
    "--object-metrics/--no-object-metrics",
    envvar="OCO_OBJECT_METRICS",
    default=True,
    show_default=True,
    help="Export per-object series: each ConnectorInstance's and account's conditions, identity "
    "and platform state (see README, Metrics).",
)
@click.option(
    "--object-metrics-max-series",
    envvar="OCO_OBJECT_METRICS_MAX_SERIES",
    type=click.IntRange(min=0),
    default=50_000,
    show_default=True,
    help="At most this many per-object series in one export, shared fairly among namespaces; the "
    "objects past a namespace's share are left out whole and counted in "
    "oco_object_series_dropped_total{namespace}.",
)
@click.option(
    "--peering",
    envvar="OCO_PEERING",
    default="",
    help="Name of the kopf peering object (a ClusterKopfPeering, also when namespaces are given; "
    "created if missing). A second copy of the operator with the same name pauses while the first "
    "runs and takes over when it stops. Empty: standalone.",
)
def run_command(  # noqa: PLR0913  (click passes each command-line option as an argument)
    namespaces: tuple[str, ...],
    default_api_url: str,
    allowed_api_hosts: tuple[str, ...],
    allow_insecure_http: bool,
    operator_namespace: str | None,
    digest_key_secret: str,
    default_account: str | None,
    account_secrets_namespaces: str,
    cluster_name: str,
    log_format: str,
    log_level: str,
    resync_interval: float,
    max_in_flight: int,
    max_in_flight_per_host: int,
    health_port: int,
    metrics_port: int,
    object_metrics: bool,
    object_metrics_max_series: int,
    peering: str,
) -> None:
    """Run the operator against the current kubeconfig, or in-cluster configuration."""
    settings = Settings(
        default_api_url=default_api_url,
        allowed_api_hosts=allowed_api_hosts,
        allow_insecure_http=allow_insecure_http,
        default_account=default_account or None,
        account_secrets_namespaces=_namespaces((account_secrets_namespaces,)),
        namespaces=_namespaces(namespaces),
        cluster_name=cluster_name or None,
        operator_namespace=operator_namespace or None,
        digest_key_secret=digest_key_secret,
        resync_interval=resync_interval,
        max_in_flight=max_in_flight,
        max_in_flight_per_host=max_in_flight_per_host,
        log_format=log_format,
        log_level=log_level,
        health_port=health_port or None,
        metrics_port=metrics_port or None,
        object_metrics=object_metrics,
        object_metrics_max_series=object_metrics_max_series,
        peering=peering or None,
    )
    refusal = HostPolicy.from_settings(allowed_api_hosts, allow_insecure_http).refusal(default_api_url)
    if refusal is not None:
        # Not fatal: objects with their own allowed spec.apiURL still work; the others stall and say so.
        click.echo(f"warning: --default-api-url {default_api_url}: {refusal}", err=True)
    kopf.configure(
        debug=log_level == "DEBUG",
        verbose=log_level == "DEBUG",
        quiet=log_level in ("WARNING", "ERROR"),
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object" if log_format == "json" else None,
        log_prefix=log_format == "text",
    )
    for noisy in ("httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if log_level != "DEBUG":
        logging.getLogger("kopf.objects").addFilter(_quiet_watch_handlers)
    logcontext.install()
    tlsbuffers.bound_read_buffers()  # before the first connection opens

    import connector_operator.handlers  # noqa: F401  (registers the handlers)
    from connector_operator.handlers.setup import PEER_KEY, SETTINGS_KEY, STOP_KEY

    started = time.time()
    health = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    me = Peer(own_identity(), priority_by_age(started))

    async def operate(stop_flag: shutdown.StopFlag) -> None:
        await kopf.operator(
            standalone=settings.peering is None,
            peering_name=settings.peering,
            priority=me.priority,
            identity=me.identity,  # type: ignore[arg-type]  # kopf's Identity: a NewType of str it does not export
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            memo=kopf.Memo(**{SETTINGS_KEY: settings, PEER_KEY: me, STOP_KEY: stop_flag}),
            liveness_endpoint=health,
            stop_flag=stop_flag,
        )

    shutdown.exit_process(shutdown.run_operator(operate))
