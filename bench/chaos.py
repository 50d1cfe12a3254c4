"""`make chaos` (`python -m bench.chaos`): N ConnectorInstances under everything at once, then a count
of what went wrong, measured against the simulator's own store (issue 10).

For `--chaos-seconds` (default 120), all at once:

- the operator is SIGKILLed every 5-15 s and started again;
- the simulator answers 20% of calls with a 5xx, sends bursts of 429s, adds 50-400 ms of latency
  and loses answers after doing the work (`drop_after`: the platform created, changed or deleted
  the instance, the caller never hears of it); with the latency, a SIGKILL also lands between a
  call the platform completes and its answer;
- the API server is restarted once (etcd keeps running);
- the cluster is rebuilt once (issue 18; `--no-rebuild` leaves it out): the operator is SIGKILLed,
  the control plane wiped (etcd's data deleted, both started again empty) and the manifests applied
  again, as Git holds them at that moment (namespaces, Secrets, accounts, the live
  ConnectorInstances, without status, so every object gets a new UID); the operator, run with
  `--cluster-name` (default `chaos`), starts while the objects are applied and must reclaim every
  instance by its claim tag;
- specs (tags) change, shared config Secrets and account Secrets change, objects are created and
  deleted (some with `deletionPolicy: Orphan`).

The N objects are spread over `--namespaces` namespaces and four kinds of account: their own
`credentialsSecretRef`, a ClusterConnectorAccount (its Secret in the operator's namespace), a
namespaced ConnectorAccount, and the operator's `--default-account` (naming neither).

Then the faults stop, the operator is left running, and every second the checks below are made
against the API server and the simulator's store (its control API, `instances()`), until all are
zero (converged) or `--converge-timeout` passes:

| check | counts |
|---|---|
| duplicates | live objects with more than one remote instance |
| leaked | remote instances whose object is gone (and was not `Orphan`) |
| missing | live objects with no remote instance |
| lost_tokens | live objects whose token Secret is missing or differs from the remote token |
| not_ready | live objects not `Ready=True` at their current generation |
| stale_config | live objects whose remote `username` or user tags differ from the spec and its Secret |
| stale_identity | live objects whose remote instance does not carry exactly their current UID tag |
| stuck_finalizers | objects being deleted that are not gone |

Whose an instance is: with a cluster name, the object its claim tag names
(`k8s-claim:<cluster>/<namespace>/<name>`), which survives the rebuild's new UIDs; an instance
without a claim, and every instance without a cluster name, the object whose UID tag it carries
(`k8s-uid:<uid>`). Two kinds of object leave a stray that the operator reports and never
deletes, counted apart (`strays_left_by_rebuild`), not as leaked: one deleted before the rebuild
whose remote deletion the wipe cut short, and one applied again by the rebuild and deleted (by
churn) before the operator took it on (before its finalizer was there).

Target: all zero within 60 s of the faults stopping. Results: `bench/results/chaos-n<N>.json` and
`.md`; logs in `bench/.work/chaos/`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from bench.kube import CI_API, KubeClient, KubeError, ci_path, secret_path
from bench.processes import ORGANIZATION_SECRET, USER_SECRET, Operator, start_operator, start_simulator
from bench.workload import bounded
from connector_operator.api.names import FINALIZER, GROUP, IDENTITY_TAG_PREFIX, KIND, PLURAL, VERSION
from hack.controlplane import cluster
from open_connectors_simulator.control import AsyncSimulatorControl

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "crds"
SET_LABEL = "bench.openconnectors.io/set"
SET = "chaos"
TEAM_LABEL = "chaos.openconnectors.io/team"
OPERATOR_NAMESPACE = "chaos-operator"
CLUSTER_ACCOUNT = "chaos-shared"
DEFAULT_ACCOUNT = "chaos-default"
NAMESPACED_ACCOUNT = "team-account"
PLATFORM_SECRET = "platform-account"
OWN_CREDENTIALS = "oc-account"
SHARED_CONFIG = "closeio-api"
MODES = ("own", "cluster", "namespaced", "default")
UID_TAG = f"{IDENTITY_TAG_PREFIX}uid:"
CLAIM_TAG = f"{IDENTITY_TAG_PREFIX}claim:"  # k8s-claim:<cluster>/<namespace>/<name> (issue 18)
CHECKS = (
    "duplicates",
    "leaked",
    "missing",
    "lost_tokens",
    "not_ready",
    "stale_config",
    "stale_identity",
    "stuck_finalizers",
)
REBUILD_AT = 0.7  # of the chaos window: after the API server's restart (0.4)
TARGET_SECONDS = 60.0
T = TypeVar("T")
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


# -- what is applied -------------------------------------------------------------------------------


@dataclass
class Obj:
    index: int
    namespace: str
    name: str
    mode: str
    own_config: bool
    orphan: bool = False
    tag_revision: int = 0
    deleting: bool = False
    reapplied: bool = False  # applied again by the rebuild (a new UID, no status)

    @property
    def config_secret(self) -> str:
        return f"cfg-{self.name}" if self.own_config else SHARED_CONFIG

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def body(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "connectorKey": "closeio",
            "tags": ["chaos", f"r{self.tag_revision}"],
            "configuration": [
                {
                    "key": "username",
                    "valueFrom": {"secretKeyRef": {"name": self.config_secret, "key": "apiKey"}},
                }
            ],
        }
        if self.mode == "own":
            spec["credentialsSecretRef"] = {"name": OWN_CREDENTIALS}
        elif self.mode == "cluster":
            spec["accountRef"] = {"kind": "ClusterConnectorAccount", "name": CLUSTER_ACCOUNT}
        elif self.mode == "namespaced":
            spec["accountRef"] = {"kind": "ConnectorAccount", "name": NAMESPACED_ACCOUNT}
        if self.orphan:
            spec["deletionPolicy"] = "Orphan"
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": self.name, "labels": {SET_LABEL: SET}},
            "spec": spec,
        }


@dataclass
class Chaos:
    args: argparse.Namespace
    kube: KubeClient
    sim: AsyncSimulatorControl
    plane: cluster.ControlPlane
    work_dir: Path
    api_url: str
    namespaces: list[str]
    rng: random.Random
    operator: Operator | None = None
    objects: dict[str, Obj] = field(default_factory=dict)  # by namespace/name, live or deleting
    # The Secrets as the driver last wrote them (namespace, name) -> data: what Git holds.
    secrets: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    orphaned_uids: set[str] = field(default_factory=set)
    orphaned_keys: set[str] = field(default_factory=set)  # namespace/name, for the claims
    stranded_keys: set[str] = field(default_factory=set)  # deleting when wiped: names and UIDs
    events: dict[str, float] = field(default_factory=dict)
    # namespace/name -> what the driver did to it, with the time: shown for the leaked ones.
    history: dict[str, list[str]] = field(default_factory=dict)
    next_index: int = 0
    api_down: bool = False
    # Held by each churn tick and each operator kill-and-start; the rebuild takes it to have the
    # cluster to itself. `plane` keeps the API server's restart and the wipe apart.
    exclusive: asyncio.Lock = field(default_factory=asyncio.Lock)
    plane_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def count(self, what: str, n: int = 1) -> None:
        self.events[what] = self.events.get(what, 0) + n

    def note(self, obj: Obj, what: str) -> None:
        self.history.setdefault(obj.key, []).append(f"{time.monotonic() - STARTED:.1f}s {what}")

    def new_object(self, namespace: str | None = None) -> Obj:
        i = self.next_index
        self.next_index += 1
        namespace = namespace or self.namespaces[i % len(self.namespaces)]
        mode = MODES[(i // len(self.namespaces)) % len(MODES)]
        return Obj(i, namespace, f"ci-{i:05d}", mode, own_config=i % 5 == 0, orphan=i % 17 == 16)

    async def retrying(self, what: str, call: Callable[[], Awaitable[T]], attempts: int = 240) -> T:
        """The driver's own calls outlive the API server's restart: retry on connection errors and 5xx."""
        for attempt in range(attempts):
            try:
                return await call()
            except KubeError as error:
                if error.status < 500 and error.status != 429:
                    raise
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if attempt == attempts - 1:
                    raise RuntimeError(f"{what}: {error}") from error
            await asyncio.sleep(0.5)  # the API server is coming back: a retry interval
        raise RuntimeError(f"{what}: the API server did not answer")

    # -- kube helpers --

    async def post(self, what: str, path: str, resource: str, body: dict[str, Any]) -> None:
        """Create `body`, or find it there already, through a restarting or rebuilt API server."""
        await self.retrying(
            what, lambda: self.kube.call("POST", path, ("POST", resource), body=body, allowed=(201, 409))
        )

    async def secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.secrets[(namespace, name)] = dict(data)
        await self.apply_secret(namespace, name, data)

    async def apply_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        await self.retrying(
            f"secret {namespace}/{name}",
            lambda: self.kube.call(
                "POST",
                secret_path(namespace),
                ("POST", "secrets"),
                body={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data},
                allowed=(201, 409),
            ),
        )

    async def patch_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        await self.retrying(
            f"patch {namespace}/{name}", lambda: self.kube.patch_secret_data(namespace, name, data)
        )
        self.secrets.setdefault((namespace, name), {}).update(data)

    async def create(self, obj: Obj) -> None:
        if obj.own_config:
            await self.secret(obj.namespace, obj.config_secret, {"apiKey": f"k{obj.index}-0"})
        self.objects[obj.key] = obj
        await self.apply_object(obj)
        self.note(obj, "created")
        self.count("created")

    async def apply_object(self, obj: Obj) -> None:
        await self.retrying(
            f"create {obj.name}",
            lambda: self.kube.call(
                "POST", ci_path(obj.namespace), ("POST", PLURAL), body=obj.body(), allowed=(201, 409)
            ),
        )

    async def delete(self, obj: Obj) -> None:
        current = await self.retrying(
            f"get {obj.name}",
            lambda: self.kube.call(
                "GET", ci_path(obj.namespace, obj.name), ("GET", PLURAL), allowed=(200, 404)
            ),
        )
        meta = current.get("metadata") or {}
        uid = meta.get("uid")
        if uid and obj.orphan:
            self.orphaned_uids.add(uid)
            self.orphaned_keys.add(obj.key)
        self.note(obj, f"deleted ({'taken on' if taken_on(meta) else 'not taken on'})")
        if obj.reapplied and not taken_on(meta):
            # Applied again by the rebuild and deleted before the operator ever took it on: nothing
            # deletes the instance it had before, which carries its claim. A stray, reported.
            self.stranded_keys.add(obj.key)
            self.count("rebuild_deleted_before_taken_on")
        await self.retrying(
            f"delete {obj.name}",
            lambda: self.kube.call(
                "DELETE", ci_path(obj.namespace, obj.name), ("DELETE", PLURAL), allowed=(200, 202, 404)
            ),
        )
        self.count("deleted_orphan" if obj.orphan else "deleted")

    async def patch_tags(self, obj: Obj) -> None:
        obj.tag_revision += 1
        body = {"spec": {"tags": ["chaos", f"r{obj.tag_revision}"]}}
        await self.retrying(
            f"patch {obj.name}",
            lambda: self.kube.call(
                "PATCH",
                ci_path(obj.namespace, obj.name),
                ("PATCH", PLURAL),
                body=body,
                content_type="application/merge-patch+json",
                allowed=(200, 404),
            ),
        )
        self.count("spec_changes")

    async def start_operator(self) -> None:
        self.operator = await start_operator(
            work_dir=self.work_dir,
            kubeconfig=self.plane.kubeconfig,
            namespaces=self.namespaces,
            api_url=self.api_url,
            args=[
                f"--operator-namespace={OPERATOR_NAMESPACE}",
                f"--default-account={DEFAULT_ACCOUNT}",
                "--log-format=json",
                *([f"--cluster-name={self.args.cluster_name}"] if self.args.cluster_name else []),
                *self.args.operator_arg,
            ],
            label="chaos",
        )


# -- set-up ------------------------------------------------------------------------------------------


async def install_crds(chaos: Chaos) -> None:
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for file in sorted(CRD_DIR.glob("*.yaml")):
        body = yaml.safe_load(file.read_text())
        await chaos.post(f"CRD {file.name}", path, "customresourcedefinitions", body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            await chaos.kube.call("GET", f"{CI_API}/{PLURAL}", ("LIST", PLURAL), params={"limit": "1"})
            await chaos.kube.call("GET", f"{CI_API}/clusterconnectoraccounts", ("LIST", "accounts"))
            return
        except KubeError:
            await asyncio.sleep(0.2)  # polling interval; the deadline is the synchronisation
    raise TimeoutError("the CRDs were not established")


async def prepare(chaos: Chaos) -> None:
    """The first apply: the Secrets recorded as Git holds them, then everything but the objects."""
    credentials = {"userSecret": USER_SECRET, "organizationSecret": ORGANIZATION_SECRET}
    chaos.secrets[(OPERATOR_NAMESPACE, PLATFORM_SECRET)] = dict(credentials)
    for namespace in chaos.namespaces:
        chaos.secrets[(namespace, OWN_CREDENTIALS)] = dict(credentials)
        chaos.secrets[(namespace, PLATFORM_SECRET)] = dict(credentials)
        chaos.secrets[(namespace, SHARED_CONFIG)] = {"apiKey": "shared-0"}
    await apply_base(chaos)


async def apply_base(chaos: Chaos) -> None:
    """Namespaces, the Secrets as the driver last wrote them, and the accounts: what Git holds
    besides the ConnectorInstances. Every call retried: after a wipe the API server is new."""
    await chaos.retrying("namespace", lambda: chaos.kube.create_namespace(OPERATOR_NAMESPACE))
    for namespace in chaos.namespaces:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {TEAM_LABEL: "chaos"}},
        }
        await chaos.post(f"namespace {namespace}", "/api/v1/namespaces", "namespaces", body)

    async def secret(item: tuple[tuple[str, str], dict[str, str]]) -> None:
        (namespace, name), data = item
        await chaos.apply_secret(namespace, name, data)

    await bounded(16, list(chaos.secrets.items()), secret)
    for namespace in chaos.namespaces:
        account = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ConnectorAccount",
            "metadata": {"name": NAMESPACED_ACCOUNT},
            "spec": {
                "credentialsSecretRef": {"name": PLATFORM_SECRET},
                "requestBudget": {"requestsPerSecond": 20, "burst": 40, "maxInFlight": 8},
            },
        }
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/connectoraccounts"
        await chaos.post(f"account {namespace}/{NAMESPACED_ACCOUNT}", path, "accounts", account)
    for name in (CLUSTER_ACCOUNT, DEFAULT_ACCOUNT):
        account = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterConnectorAccount",
            "metadata": {"name": name},
            "spec": {
                "credentialsSecretRef": {"name": PLATFORM_SECRET, "namespace": OPERATOR_NAMESPACE},
                "requestBudget": {"requestsPerSecond": 30, "burst": 60, "maxInFlight": 12},
                "namespaceSelector": {"matchLabels": {TEAM_LABEL: "chaos"}},
            },
        }
        path = f"/apis/{GROUP}/{VERSION}/clusterconnectoraccounts"
        await chaos.post(f"account {name}", path, "accounts", account)


# -- the fault schedule ------------------------------------------------------------------------------


async def operator_killer(chaos: Chaos, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), chaos.rng.uniform(5, 15))  # the schedule's pace
        if stop.is_set():
            return
        async with chaos.exclusive:
            if chaos.operator is not None:
                await asyncio.to_thread(chaos.operator.child.kill)
                chaos.count("operator_sigkills")
            await chaos.start_operator()


async def platform_faults(chaos: Chaos, stop: asyncio.Event) -> None:
    sim = chaos.sim
    await sim.set_error_rate({"*": chaos.args.error_rate}, status=503, seed=chaos.args.seed)
    while not stop.is_set():
        roll = chaos.rng.random()
        await sim.set_latency(chaos.rng.randint(50, 400))
        await sim.set_error_rate({"*": chaos.args.error_rate}, status=chaos.rng.choice([500, 502, 503, 504]))
        if roll < 0.3:
            await sim.rate_limit_next(
                "*", count=chaos.rng.randint(10, 40), retry_after=chaos.rng.randint(1, 3)
            )
            chaos.count("rate_limit_bursts")
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            if chaos.rng.random() < 0.5:
                await sim.drop_next(method, count=chaos.rng.randint(1, 3), after_handling=True)
                chaos.count("drop_after_rules")
        if chaos.rng.random() < 0.2:
            await sim.drop_next("*", count=chaos.rng.randint(1, 3), after_handling=False)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), chaos.rng.uniform(2, 5))


async def api_server_restart(chaos: Chaos, stop: asyncio.Event, at: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), at)
    if stop.is_set():
        return
    say("restarting kube-apiserver (etcd keeps running)")
    async with chaos.plane_lock:
        chaos.api_down = True
        down = await asyncio.to_thread(chaos.plane.restart_api_server)
        chaos.api_down = False
    chaos.events["api_server_down_seconds"] = round(down, 1)
    chaos.count("api_server_restarts")
    say(f"kube-apiserver back after {down:.1f}s")


async def churn(chaos: Chaos, stop: asyncio.Event) -> None:
    """Spec changes, Secret changes, creates and deletes, a few every second."""
    tick = 0
    while not stop.is_set():
        tick += 1
        async with chaos.exclusive:
            live = [o for o in chaos.objects.values() if not o.deleting]
            for obj in chaos.rng.sample(live, min(3, len(live))):
                await chaos.patch_tags(obj)
            if tick % 3 == 0 and live:
                victim = chaos.rng.choice(live)
                victim.deleting = True
                await chaos.delete(victim)
                await chaos.create(chaos.new_object())
            if tick % 4 == 0:
                own = [o for o in live if o.own_config]
                for obj in chaos.rng.sample(own, min(3, len(own))):
                    await chaos.patch_secret(
                        obj.namespace, obj.config_secret, {"apiKey": f"k{obj.index}-{tick}"}
                    )
                    chaos.count("own_secret_changes")
            if tick % 10 == 0:
                namespace = chaos.rng.choice(chaos.namespaces)
                await chaos.patch_secret(namespace, SHARED_CONFIG, {"apiKey": f"shared-{tick}"})
                chaos.count("shared_secret_changes")
                # The accounts' Secrets change too (an extra key: the simulator has one account, so
                # the credentials themselves stay valid).
                await chaos.patch_secret(OPERATOR_NAMESPACE, PLATFORM_SECRET, {"revision": str(tick)})
                await chaos.patch_secret(namespace, PLATFORM_SECRET, {"revision": str(tick)})
                await chaos.patch_secret(namespace, OWN_CREDENTIALS, {"revision": str(tick)})
                chaos.count("account_secret_changes", 3)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def rebuild(chaos: Chaos, stop: asyncio.Event, delay: float) -> None:
    """The cluster lost and rebuilt from Git once: the operator dies with it, the control plane is
    wiped, and the manifests are applied again as the driver last wrote them (the live objects
    without status: new UIDs). The operator starts while the objects are applied, as a GitOps
    tool applies a chart and its objects together. Churn and the operator's killer wait meanwhile;
    the platform's faults go on. It happens in every run that asks for it: if the window ends
    first (a short window, a slow API server restart holding the plane), at its end, before the
    faults are cleared."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    async with chaos.plane_lock, chaos.exclusive:
        started = time.monotonic()
        say("rebuilding the cluster: operator killed, control plane wiped, manifests applied again")
        if chaos.operator is not None:
            await asyncio.to_thread(chaos.operator.child.kill)
            chaos.operator = None
        # Objects whose deletion was asked for and is not done: Git no longer has them, and the
        # wipe cuts their remote deletion short. Their instances stay as strays.
        listing = await chaos.retrying(
            "list before the wipe",
            lambda: chaos.kube.call(
                "GET", f"{CI_API}/{PLURAL}", ("LIST", PLURAL), params={"labelSelector": f"{SET_LABEL}={SET}"}
            ),
        )
        present = {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i for i in listing["items"]}
        stranded = {o.key for o in chaos.objects.values() if o.deleting and o.key in present}
        # By name (their claims) and by UID (an instance without a claim).
        chaos.stranded_keys |= stranded | {present[key]["metadata"]["uid"] for key in stranded}
        wiped = await asyncio.to_thread(chaos.plane.wipe)
        await install_crds(chaos)
        await apply_base(chaos)
        await chaos.start_operator()
        live = [o for o in chaos.objects.values() if not o.deleting]
        for obj in live:
            obj.reapplied = True
            chaos.note(obj, "applied again")
        for key in stranded:
            chaos.note(chaos.objects[key], "its deletion cut short by the wipe")
        await bounded(16, live, chaos.apply_object)
        chaos.count("rebuilds")
        chaos.count("rebuild_objects_applied", len(live))
        chaos.count("rebuild_deletions_cut_short", len(stranded))
        chaos.events["rebuild_wipe_seconds"] = round(wiped, 1)
        chaos.events["rebuild_seconds"] = round(time.monotonic() - started, 1)
        say(f"rebuilt in {time.monotonic() - started:.1f}s: {len(live)} objects applied again")


# -- the checks ----------------------------------------------------------------------------------------


def _decode(secret: dict[str, Any], key: str) -> str | None:
    value = (secret.get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value is not None else None


def taken_on(meta: dict[str, Any]) -> bool:
    """Whether the operator has taken the object on (its finalizer is there): only then does its
    deletion reach the platform. An object deleted before that never had a pass."""
    return FINALIZER in (meta.get("finalizers") or [])


def owners(tags: list[str], cluster: str | None) -> list[str]:
    """Whose an instance is, by its tags: with a cluster name, the `namespace/name` its claim names
    (one: the first); otherwise, and for an instance without a claim, the UIDs of its UID tags. A
    UID holds no `/`, so the two never collide."""
    if cluster:
        prefix = f"{CLAIM_TAG}{cluster}/"
        claims = [t[len(prefix) :] for t in tags if t.startswith(prefix)]
        if claims:
            return claims[:1]
    return [t[len(UID_TAG) :] for t in tags if t.startswith(UID_TAG)]


def assess(
    items: list[dict[str, Any]],
    secrets: dict[tuple[str, str], dict[str, Any]],
    instances: list[dict[str, Any]],
    *,
    cluster: str | None,
    orphaned: set[str],
    stranded: set[str],
) -> dict[str, Any]:
    """The checks, from the objects the API server lists, their namespaces' Secrets and the
    simulator's instances. `orphaned`: UIDs and `namespace/name`s of objects deleted with
    `deletionPolicy: Orphan` (their instances stay by design); `stranded`: `namespace/name`s whose
    remote deletion a rebuild cut short (their instances stay as strays, counted apart)."""
    by_owner: dict[str, list[dict[str, Any]]] = {}
    untagged = 0
    for instance in instances:
        found = owners(instance.get("tags") or [], cluster)
        if not found:
            untagged += 1
        for owner in found:
            by_owner.setdefault(owner, []).append(instance)

    problems: dict[str, list[str]] = {k: [] for k in CHECKS}
    existing: set[str] = set()
    for item in items:
        meta, spec, status = item["metadata"], item["spec"], item.get("status") or {}
        key, uid = f"{meta['namespace']}/{meta['name']}", meta["uid"]
        uid_tag = f"{UID_TAG}{uid}"
        existing |= {key, uid}
        remote = by_owner.get(uid, []) + (by_owner.get(key, []) if cluster else [])
        if len(remote) > 1:
            problems["duplicates"].append(key)
        if meta.get("deletionTimestamp"):
            problems["stuck_finalizers"].append(key)
            continue
        ready: dict[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {}
        )
        if ready.get("status") != "True" or status.get("observedGeneration") != meta.get("generation"):
            problems["not_ready"].append(f"{key} ({ready.get('reason')})")
        if not remote:
            problems["missing"].append(key)
            continue
        # With duplicates, the one the object uses: its status's, else the one with its UID tag.
        instance = min(
            remote, key=lambda i: (i["id"] != status.get("instanceID"), uid_tag not in (i.get("tags") or []))
        )
        token_secret = secrets.get((meta["namespace"], f"{meta['name']}-token"))
        if token_secret is None or _decode(token_secret, "token") != instance.get("token"):
            problems["lost_tokens"].append(key)
        ref = spec["configuration"][0]["valueFrom"]["secretKeyRef"]
        config_secret = secrets.get((meta["namespace"], ref["name"]))
        wanted = _decode(config_secret, ref["key"]) if config_secret else None
        tags = instance.get("tags") or []
        user_tags = sorted(t for t in tags if not t.startswith(IDENTITY_TAG_PREFIX))
        if (instance.get("configuration") or {}).get("username") != wanted or user_tags != sorted(
            spec.get("tags") or []
        ):
            problems["stale_config"].append(key)
        if [t for t in tags if t.startswith(UID_TAG)] != [uid_tag]:
            problems["stale_identity"].append(key)
    strays = 0
    for owner, owned in by_owner.items():
        if owner in existing or owner in orphaned:
            continue
        if owner in stranded:
            strays += len(owned)
            continue
        problems["leaked"].extend(f"{i['id']} ({owner})" for i in owned)
    return {
        "counts": {k: len(v) for k, v in problems.items()},
        "objects": len(items),
        "remote_instances": len(instances),
        "untagged_remote_instances": untagged,
        "strays_left_by_rebuild": strays,
        "examples": {k: v[:10] for k, v in problems.items() if v},
    }


async def measure(chaos: Chaos) -> dict[str, Any]:
    kube = chaos.kube
    listing = await kube.call(
        "GET", f"{CI_API}/{PLURAL}", ("LIST", PLURAL), params={"labelSelector": f"{SET_LABEL}={SET}"}
    )
    secrets: dict[tuple[str, str], dict[str, Any]] = {}
    for namespace in chaos.namespaces:
        for item in (await kube.call("GET", secret_path(namespace), ("LIST", "secrets")))["items"]:
            secrets[(namespace, item["metadata"]["name"])] = item
    result = assess(
        listing["items"],
        secrets,
        await chaos.sim.instances(),
        cluster=chaos.args.cluster_name or None,
        orphaned=chaos.orphaned_uids | chaos.orphaned_keys,
        stranded=chaos.stranded_keys,
    )
    leaked = {e.split(" (")[-1].rstrip(")") for e in result["examples"].get("leaked", [])}
    result["history_of_leaked"] = {k: chaos.history[k] for k in sorted(leaked) if k in chaos.history}
    return result


# -- the run -----------------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace, plane: cluster.ControlPlane, work_dir: Path, result: dict[str, Any]
) -> None:
    simulator = await start_simulator(work_dir, 0)
    kube = KubeClient(plane.server, plane.admin_token, plane.ca_file)
    sim = AsyncSimulatorControl(simulator.base_url)
    chaos = Chaos(
        args, kube, sim, plane, work_dir, simulator.api_url,
        [f"chaos-{i}" for i in range(args.namespaces)], random.Random(args.seed),
    )  # fmt: skip
    try:
        await install_crds(chaos)
        await prepare(chaos)
        await chaos.start_operator()
        say(f"operator up; chaos for {args.chaos_seconds:.0f}s with N={args.n}")
        stop = asyncio.Event()
        faults_started = time.monotonic()
        tasks = [
            asyncio.create_task(platform_faults(chaos, stop)),
            asyncio.create_task(operator_killer(chaos, stop)),
            asyncio.create_task(api_server_restart(chaos, stop, args.chaos_seconds * 0.4)),
        ]
        # The N objects are created while the faults already run.
        initial = [chaos.new_object() for _ in range(args.n)]
        await bounded(16, initial, chaos.create)
        say(f"{args.n} objects created")
        tasks.append(asyncio.create_task(churn(chaos, stop)))
        if args.rebuild:
            at = args.chaos_seconds * REBUILD_AT - (time.monotonic() - faults_started)
            tasks.append(asyncio.create_task(rebuild(chaos, stop, max(0.0, at))))
        remaining = args.chaos_seconds - (time.monotonic() - faults_started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*tasks)), max(0.0, remaining))
        stop.set()
        await asyncio.gather(*tasks)
        # Faults stop: a healthy platform, the operator left running (started if it was down).
        await sim.clear_faults()
        await sim.set_error_rate({})
        await sim.set_latency(0)
        if chaos.operator is None or not chaos.operator.child.alive():
            await chaos.start_operator()
        faults_stopped = time.monotonic()
        result["chaos"] = {"seconds": round(faults_stopped - faults_started, 1), "events": dict(chaos.events)}
        say(f"faults stopped after {faults_stopped - faults_started:.0f}s: {chaos.events}")
        converged_at: float | None = None
        timeline: list[dict[str, Any]] = []
        last: dict[str, Any] = {}
        while time.monotonic() - faults_stopped < args.converge_timeout:
            last = await measure(chaos)
            elapsed = round(time.monotonic() - faults_stopped, 1)
            timeline.append({"t": elapsed, **last["counts"]})
            if not any(last["counts"].values()):
                converged_at = elapsed
                break
            say(f"+{elapsed:5.1f}s {last['counts']}")
            await asyncio.sleep(1.0)  # measuring interval
        result["final"] = last
        result["timeline"] = timeline
        result["seconds_to_converge"] = converged_at
        result["met"] = converged_at is not None and converged_at <= TARGET_SECONDS
        result["simulator_counters"] = await sim.counters()
    finally:
        result["operator_log"] = str(work_dir / "operator-chaos.log")
        if chaos.operator is not None:
            await chaos.operator.child.stop_async()
        await sim.aclose()
        await kube.close()
        await simulator.child.stop_async()


def render(result: dict[str, Any]) -> str:
    final = result.get("final") or {}
    counts = final.get("counts") or {}
    converged = result.get("seconds_to_converge")
    timeout = result["parameters"]["converge_timeout"]
    converge = f"not within {timeout:.0f} s" if converged is None else f"{converged} s"
    verdict = "met" if result.get("met") else "NOT met"
    lines = [
        f"# make chaos: N={result['parameters']['n']}",
        "",
        f"`{result['command']}` at {result['started']}, commit {result['commit']}, "
        f"load {result['load_average']}",
        "",
        "| check | after the faults stopped | target |",
        "|---|---|---|",
        *(f"| {name} | {value} | 0 |" for name, value in counts.items()),
        f"| time to converge | {converge} | ≤ {TARGET_SECONDS:.0f} s |",
        "",
        f"**Target {verdict}.** Objects at the end: {final.get('objects')}, "
        f"remote instances: {final.get('remote_instances')}"
        + (
            f", of which strays the rebuild left (reported, never deleted): "
            f"{final['strays_left_by_rebuild']}."
            if final.get("strays_left_by_rebuild")
            else "."
        ),
        "",
        "Faults during the chaos window: " + json.dumps((result.get("chaos") or {}).get("events", {})),
    ]
    if final.get("examples"):
        lines += ["", "Examples:", "", "```", json.dumps(final["examples"], indent=1), "```"]
    if final.get("history_of_leaked"):
        history = json.dumps(final["history_of_leaked"], indent=1)
        lines += ["", "What the driver did to the leaked ones:", "", "```", history, "```"]
    if result.get("error"):
        lines += ["", "Error:", "", "```", result["error"], "```"]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--chaos-seconds", type=float, default=120.0)
    parser.add_argument("--converge-timeout", type=float, default=150.0)
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--cluster-name",
        default="chaos",
        help="the operator's --cluster-name (its claim tags); empty: none, and no rebuild",
    )
    parser.add_argument(
        "--no-rebuild",
        dest="rebuild",
        action="store_false",
        help="leave out the cluster rebuild (control plane wiped, manifests applied again)",
    )
    parser.add_argument(
        "--operator-arg", action="append", default=[], help="extra operator flag (write it with =)"
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / ".work" / "chaos")
    args = parser.parse_args(argv)
    if args.rebuild and not args.cluster_name:
        parser.error("the rebuild needs a --cluster-name (without one it makes duplicates); or --no-rebuild")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "operator"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    result: dict[str, Any] = {
        "command": " ".join(["python -m bench.chaos", *(argv if argv is not None else sys.argv[1:])]),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit + ("+uncommitted operator changes" if dirty else ""),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    work_dir = args.work_dir
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    try:
        with cluster.running(work_dir / "controlplane") as plane:
            asyncio.run(run(args, plane, work_dir, result))
    except BaseException as error:  # written with the partial results, then re-raised below
        result["error"] = "".join(traceback.format_exception(error))[-4000:]
        if not isinstance(error, Exception):
            raise
    finally:
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / f"chaos-n{args.n}"
        stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        stem.with_suffix(".md").write_text(render(result))
        print(render(result))
    return 0 if result.get("met") else 1


if __name__ == "__main__":
    sys.exit(main())
