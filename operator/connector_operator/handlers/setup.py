"""Operator start-up and shut-down: kopf's settings and the shared clients.

kopf's bookkeeping is renamed to our prefix and kept out of `spec` and `metadata`: handler
progress goes to `status.kopf` (which the CRD declares, and which Argo CD does not diff), the
finalizer is `openconnectors.io/finalizer`. The Secret watch gets a server-side label selector,
so the operator never lists or watches Secrets it has not labelled. No diff-base is stored
at all (see `NoDiffBase`), so kopf writes nothing into the object's metadata but the finalizer.
The operator's digest key (kube/digestkey.py) is read, or created, once before anything else runs,
and with --peering its peering object (kube/peering.py: one ClusterKopfPeering, for the namespaced
install too, so that nothing in a tenant's namespace can pause it) is created if missing. The login,
ours and kopf's, finds the API server a pod's environment names first (kube/incluster.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from connector_operator import metrics
from connector_operator.api.account import AccountKind
from connector_operator.api.names import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    FINALIZER,
    GROUP,
    MANAGED_BY_VALUE,
    PLURAL,
    VERSION,
    WATCH_LABEL,
)
from connector_operator.domain.accounts import AccountKey
from connector_operator.engine.deleteretry import PROGRESS_FIELD
from connector_operator.handlers import instances
from connector_operator.handlers.secrets import LIST_CHUNK, SECRETS
from connector_operator.kube import digestkey, incluster, keepalive, peering, storage
from connector_operator.kube.api import KubeAPI, KubeError
from connector_operator.kube.storage import Kind
from connector_operator.reconciler import instance as passes
from connector_operator.reconciler.assemble import assemble
from connector_operator.reconciler.runtime import Runtime
from connector_operator.settings import Settings

logger = logging.getLogger(__name__)

SETTINGS_KEY = "settings"
PEER_KEY = "peer"  # this copy in the peering records (kube/keepalive.py), from run.py
STOP_KEY = "stop_flag"  # done once the operator is asked to stop (shutdown.py)
WORKER_IDLE_SECONDS = 0.5
# On stop, how long a running pass may take to finish (a create: its POST); within shutdown.py's
# STOP_GRACE, after which kopf's tasks, ours included, are cancelled anyway.
PASS_STOP_TIMEOUT = 2.5
# Storage migration (issue 23): the kinds, and its retries before it is left to the next start.
MIGRATED = ((PLURAL, True), (ACCOUNT_PLURAL, True), (CLUSTER_ACCOUNT_PLURAL, False))
MIGRATION_ATTEMPTS, MIGRATION_RETRY = 5, 2.0


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff-base feeds on.create/on.update handlers, which this operator does not have: its
    passes compare the desired request with the applied one themselves. Storing it anyway would
    cost an annotation write per spec change and put a copy of the spec into metadata."""

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field=".".join(PROGRESS_FIELD))
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.label_selectors[SECRETS] = WATCH_LABEL
    settings.watching.chunk_size = LIST_CHUNK  # a start-up holds a bounded number of big Secrets
    settings.posting.level = logging.INFO
    # `From:` in `kubectl describe` and the reporting controller of our Events (kopf's is "kopf").
    settings.posting.reporting_component = MANAGED_BY_VALUE
    # Handler failures are ours to schedule (engine/retries.py); kopf's default is a flat 60 s.
    settings.execution.default_backoff = 5
    # A per-object worker of kopf's holds the object's last event while it idles; nothing of ours
    # needs it once handled (passes keep what they read: engine/objects.py).
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS


def credentials(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """In-cluster ServiceAccount first, then the kubeconfig: what kopf and our own calls use. In a pod
    the API server is the one KUBERNETES_SERVICE_HOST/PORT name, as for client-go (kube/incluster.py);
    without them, kopf's `https://kubernetes.default.svc`."""
    trust_env = settings.networking.trust_env
    return (
        incluster.login_from_environment(trust_env=trust_env)
        or kopf.login_with_service_account(settings=settings)
        or kopf.login_with_kubeconfig(settings=settings)
    )


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    # Our own handler replaces kopf's defaults, which would piggyback on the `kubernetes` package.
    return credentials(settings)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure_kopf(settings)
    ours: Settings = memo[SETTINGS_KEY]
    # Watching named namespaces needs no cluster-wide scans of namespaces and CRDs, and so no
    # cluster-wide permission at all: the Helm chart's namespaced install grants only Roles.
    settings.scanning.disabled = bool(ours.namespaces)
    api = KubeAPI(lambda: credentials(settings))
    memo["kube_api"] = api
    home = await operator_namespace(ours, settings)
    key = await digest_key(api, ours, home)
    if ours.peering is not None:
        peer_in_the_cluster(settings, ours.peering)
        await peering_object(api, ours.peering)
        if "keepalive" not in memo and memo.get(STOP_KEY) is not None:
            memo["keepalive"] = asyncio.create_task(
                keepalive.keep_alive(
                    api,
                    ours.peering,
                    memo[PEER_KEY],
                    memo[STOP_KEY],
                    judged=lambda outranked: peering_judged(memo, outranked),
                )
            )
    memo["runtime"] = assemble(
        ours,
        api,
        digest_key=key,
        home=home,
        events=instances.post_events,
        stop=memo.get(STOP_KEY),
    )
    await list_accounts(memo["runtime"], api, ours.namespaces)
    if not ours.namespaces and "migration" not in memo:
        memo["migration"] = asyncio.create_task(migrate_storage(api))
    if ours.metrics_port:
        metrics.serve(ours.metrics_port)
    logger.info(
        "operator started: namespaces=%s default API URL=%s",
        ",".join(ours.namespaces) or "<all>",
        ours.default_api_url,
    )


def peering_judged(memo: kopf.Memo, outranked: bool) -> None:
    """Pause the passes while another copy outranks this one, as kopf pauses its watches. On
    resuming (a failover), the accounts are listed again first: kopf stopped their loops meanwhile,
    and an instance must wait for its account to load again rather than read it missing."""
    runtime: Runtime | None = memo.get("runtime")
    memo["outranked"] = outranked
    api: KubeAPI | None = memo.get("kube_api")
    if runtime is None:
        return
    if outranked or api is None:
        passes.outranked(runtime, outranked)
        return
    namespaces = memo[SETTINGS_KEY].namespaces

    async def resume() -> None:
        try:
            await list_accounts(runtime, api, namespaces)
        finally:  # as peering says by now (it may have outranked this copy again meanwhile)
            passes.outranked(runtime, bool(memo.get("outranked")))

    memo["listing"] = asyncio.get_running_loop().create_task(resume())


async def operator_namespace(ours: Settings, settings: kopf.OperatorSettings) -> str:
    """The operator's own namespace: the flag, else the in-cluster one, else the kubeconfig's."""
    if ours.operator_namespace is not None:
        return ours.operator_namespace
    info = await asyncio.to_thread(credentials, settings)  # reads files: off the event loop
    return (info.default_namespace if info is not None else None) or "default"


async def digest_key(api: KubeAPI, ours: Settings, namespace: str) -> bytes:
    """The operator's digest key. Missing permissions or an unusable key Secret stop the operator
    with a message saying which; anything else is retried by kopf (the startup handler fails)."""
    where = f"Secret {namespace}/{ours.digest_key_secret}"
    try:
        key = await digestkey.load_or_create(api, namespace, ours.digest_key_secret)
    except digestkey.DigestKeyError as error:
        raise kopf.PermanentError(str(error)) from None
    except KubeError as error:
        if error.status in (401, 403):
            raise kopf.PermanentError(
                f"cannot read or create the digest key {where}: HTTP {error.status} {error.reason}; "
                "the operator needs get and create on that Secret (--operator-namespace, --digest-key-secret)"
            ) from None
        message = f"digest key {where}: HTTP {error.status} {error.reason}"
        raise kopf.TemporaryError(message, delay=5) from None
    logger.info("digest key: %s", where)
    return key


def peer_in_the_cluster(settings: kopf.OperatorSettings, name: str) -> None:
    """kopf peers in the one ClusterKopfPeering `name`, whatever the operator watches. Given
    namespaces, kopf would peer in a KopfPeering of each, where any tenant with write access to
    `kopfpeerings` could pause the whole operator (kube/peering.py). kopf reads this setting when
    its peering tasks start, after the startup handlers (`kopf.operator` sets it from the scope
    before them). Its list and watch select the object by name: the ClusterRole grants no more."""
    settings.peering.clusterwide = True
    settings.watching.field_selectors[peering.GROUP, peering.PLURAL] = peering.name_selector(name)


async def peering_object(api: KubeAPI, name: str) -> None:
    """The peering object kopf needs, created if missing (kube/peering.py). Without its CRD or the
    permission the operator stops with a message: a copy that cannot peer must not run unpaired."""
    try:
        await peering.ensure_object(api, name)
    except peering.PeeringUnavailable as error:
        raise kopf.PermanentError(str(error)) from None
    except KubeError as error:
        if error.status in (401, 403):
            raise kopf.PermanentError(
                f"cannot create the peering object {name}: HTTP {error.status} {error.reason}; the "
                f"operator needs create, list, watch and patch on {peering.PLURAL}.{peering.GROUP}"
            ) from None
        message = f"peering object {name}: HTTP {error.status} {error.reason}"
        raise kopf.TemporaryError(message, delay=5) from None


async def list_accounts(runtime: Runtime, api: KubeAPI, namespaces: tuple[str, ...]) -> None:
    """The accounts that exist now, listed before any watch starts (kopf runs this handler first),
    so that an instance of one waits for its account to be loaded instead of reading it missing
    (engine/accounts.py `loading`). Without an answer, instances are judged as before."""
    paths = [f"/apis/{GROUP}/{VERSION}/{CLUSTER_ACCOUNT_PLURAL}"]
    paths += [f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{ACCOUNT_PLURAL}" for ns in namespaces]
    paths += [] if namespaces else [f"/apis/{GROUP}/{VERSION}/{ACCOUNT_PLURAL}"]
    found: set[AccountKey] = set()
    try:
        for path in paths:
            listed = await api.request("GET", path, accept=storage.METADATA_LIST) or {}
            found.update(_account_key(item) for item in listed.get("items") or [])
    except KubeError as error:
        logger.warning("accounts not listed at start: HTTP %s", error.status)
        return
    runtime.accounts.listed, runtime.accounts.listed_at = frozenset(found), time.monotonic()


def _account_key(item: dict[str, Any]) -> AccountKey:
    meta = item.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    kind = AccountKind.CONNECTOR_ACCOUNT if namespace else AccountKind.CLUSTER_CONNECTOR_ACCOUNT
    return AccountKey(kind, namespace, str(meta.get("name") or ""))


async def migrate_storage(api: KubeAPI) -> None:
    """The cluster-wide operator writes objects stored at an earlier API version at the current
    one, then trims the CRDs' storedVersions (kube/storage.py); retried a few times, then left to
    the next start (a rerun is safe: it only writes what is not migrated yet)."""
    kinds = [Kind(GROUP, plural, namespaced) for plural, namespaced in MIGRATED]
    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            done = await storage.migrate(api, kinds, VERSION)
        except storage.NotServed as error:
            logger.warning("storage migration not done: %s", error)
            return
        except KubeError as error:
            logger.warning("storage migration: HTTP %s %s; retrying", error.status, error.reason)
            await asyncio.sleep(MIGRATION_RETRY * 2**attempt)
            continue
        if done is None:
            logger.info("storage migration left to the platform team: this identity may not read the CRDs")
        return
    logger.warning("storage migration not done; the next start tries again (README: Upgrading)")


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for name in ("keepalive", "migration", "listing"):
        running: asyncio.Task[None] | None = memo.get(name)
        if running is not None:  # done since the stop flag, unless the operator ended for another reason
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.scheduler.stop(timeout=PASS_STOP_TIMEOUT)
        await runtime.delete_retries.close()
        await runtime.waits.close()
        await runtime.instances.aclose()
    api: KubeAPI | None = memo.get("kube_api")
    if api is not None:
        await api.aclose()
