"""What the benchmark applies: namespaces, the CRD, input Secrets, ConnectorInstances, noise Secrets.

Objects `ci-00000`... are spread round-robin over the namespaces. A `churn` subset (every k-th
object of each namespace, `--churn-fraction` of them) reads its Close.io `username` from a
Secret of its own, so that changing one Secret changes exactly one object; the others share one
Secret per namespace. The floor and the operator get identical objects in separate namespaces,
told apart by a label.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bench.kube import CI_API, KubeClient, KubeError, ci_path
from bench.processes import ORGANIZATION_SECRET, USER_SECRET
from connector_operator.api.names import GROUP, KIND, PLURAL, VERSION

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "openconnectors.io_connectorinstances.yaml"
SET_LABEL = "bench.openconnectors.io/set"
ACCOUNT_SECRET = "oc-account"
SHARED_CONFIG_SECRET = "closeio-api"
CONFIG_KEY = "apiKey"
ESTABLISH_TIMEOUT = 60.0
T = TypeVar("T")


@dataclass(frozen=True)
class Obj:
    index: int
    namespace: str
    name: str
    config_secret: str
    own_secret: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def config_value(self, revision: int = 0) -> str:
        # Close.io's username is TEXT_32 in the simulator's catalog: keep it short.
        return f"key-{self.index}-r{revision}" if self.own_secret else "shared-closeio-key"


@dataclass(frozen=True)
class Workload:
    n: int
    namespace_count: int
    churn_fraction: float

    def namespaces(self, set_name: str) -> list[str]:
        prefix = "bench" if set_name == "operator" else f"bench-{set_name}"
        return [f"{prefix}-{i}" for i in range(self.namespace_count)]

    @property
    def churn_stride(self) -> int:
        return max(1, round(1 / self.churn_fraction)) if self.churn_fraction > 0 else self.n + 1

    def objects(self, set_name: str) -> list[Obj]:
        namespaces = self.namespaces(set_name)
        result = []
        for i in range(self.n):
            name = f"ci-{i:05d}"
            # Every k-th object *of each namespace* (not every k-th overall, which with k equal to
            # the namespace count would put the whole churn set into one namespace).
            own = (i // len(namespaces)) % self.churn_stride == 0
            secret = f"cfg-{name}" if own else SHARED_CONFIG_SECRET
            result.append(Obj(i, namespaces[i % len(namespaces)], name, secret, own))
        return result


def instance_body(obj: Obj, set_name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": obj.name, "labels": {SET_LABEL: set_name}},
        "spec": {
            "connectorKey": "closeio",
            "credentialsSecretRef": {"name": ACCOUNT_SECRET},
            "tags": ["bench"],
            "configuration": [
                {
                    "key": "username",
                    "valueFrom": {"secretKeyRef": {"name": obj.config_secret, "key": CONFIG_KEY}},
                }
            ],
        },
    }


async def bounded(concurrency: int, items: Iterable[T], work: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """Run `work` over `items` with at most `concurrency` in flight; results in item order."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item: T) -> Any:
        async with slots:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def install_crd(kube: KubeClient) -> None:
    body = yaml.safe_load(CRD_FILE.read_text())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    await kube.call("POST", path, ("POST", "customresourcedefinitions"), body=body, allowed=(201, 409))
    name = body["metadata"]["name"]
    deadline = time.monotonic() + ESTABLISH_TIMEOUT
    while time.monotonic() < deadline:
        crd = await kube.call("GET", f"{path}/{name}", ("GET", "customresourcedefinitions"))
        conditions = (crd.get("status") or {}).get("conditions") or []
        established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
        # Established is not enough: the new resource's storage answers 429 until its cache is up.
        if established and await _listable(kube):
            return
        await asyncio.sleep(0.2)  # polling interval; the deadline is the synchronisation
    raise TimeoutError("the ConnectorInstance CRD was not established")


async def warm_up(kube: KubeClient, count: int = 20) -> None:
    """Create and delete a few objects before anything is timed: the API server's first writes of
    a new resource are slow (in a first test run the floor's creates took 2.2 s for 100 objects,
    the operator run's later ones 0.2 s), and the floor, which goes first, must not pay for that."""
    namespace = "bench-warmup"
    await kube.create_namespace(namespace)
    objects = [Obj(i, namespace, f"warmup-{i}", SHARED_CONFIG_SECRET, False) for i in range(count)]
    await bounded(count, objects, lambda o: kube.create_instance(namespace, instance_body(o, "warmup")))
    await bounded(
        count,
        objects,
        lambda o: kube.call(
            "DELETE", ci_path(namespace, o.name), ("DELETE", PLURAL), allowed=(200, 202, 404)
        ),
    )


async def _listable(kube: KubeClient) -> bool:
    try:
        await kube.call("GET", f"{CI_API}/{PLURAL}", ("LIST", PLURAL), params={"limit": "1"})
    except KubeError as error:
        if error.status == 429:
            return False
        raise
    return True


async def prepare_namespaces(kube: KubeClient, workload: Workload, set_name: str, *, inputs: bool) -> None:
    """Namespaces, and (for the operator's set) the account and configuration Secrets it reads."""
    for namespace in workload.namespaces(set_name):
        await kube.create_namespace(namespace)
        if inputs:
            account = {"userSecret": USER_SECRET, "organizationSecret": ORGANIZATION_SECRET}
            await kube.create_secret(namespace, ACCOUNT_SECRET, account)
            await kube.create_secret(namespace, SHARED_CONFIG_SECRET, {CONFIG_KEY: "shared-closeio-key"})
    if inputs:
        own = [o for o in workload.objects(set_name) if o.own_secret]
        await bounded(
            32,
            own,
            lambda o: kube.create_secret(o.namespace, o.config_secret, {CONFIG_KEY: o.config_value()}),
        )


async def apply_instances(
    kube: KubeClient, objects: Sequence[Obj], set_name: str, concurrency: int
) -> tuple[float, list[dict[str, Any]]]:
    """Create all objects concurrently; returns (monotonic time of the first create, created bodies)."""
    started = time.monotonic()
    created = await bounded(
        concurrency, objects, lambda o: kube.create_instance(o.namespace, instance_body(o, set_name))
    )
    return started, created


async def create_unrelated_secrets(kube: KubeClient, namespaces: Sequence[str], count: int) -> int:
    """Secrets the operator has no business with (no label, nobody references them), ~1 KiB each."""

    async def one(i: int) -> None:
        data = {"payload": secrets.token_hex(512)}
        try:
            await kube.create_secret(namespaces[i % len(namespaces)], f"unrelated-{i:05d}", data)
        except KubeError as error:
            if error.status != 409:
                raise

    await bounded(32, range(count), one)
    return count
