"""One Secret with huge metadata does not stop the shared watch that wakes waiting objects (issue 9
review, finding 3).

Objects waiting for a Secret share one metadata-only watch per namespace (engine/secretwaits.py).
A Secret with 4,500 labels makes one watch event of about 580 KiB, one JSON line; aiohttp's line
reader raised LineTooLong on it, which the watch loop did not catch: the watch task died, stayed
registered while anyone waited, and every waiting object heard of its Secret only at its next
backoff (up to five minutes). On the real API server: the watch skips the event and goes on; the
shared waits wake every waiter for it (it could have been theirs) and still deliver the next
event; and, with the operator as a process, an object waiting for a Secret is Ready within a few
seconds of the Secret appearing after such a Secret, when its own retry is 16 s away or more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import kopf
import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from connector_operator.engine.secretwaits import SecretWaits
from connector_operator.engine.wakeups import Wakeups
from connector_operator.kube.api import KubeAPI
from connector_operator.kube.secrets import Secrets
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import wait_until
from tests.fixtures.waiting import eventually
from tests.integration.support import CLOSEIO_API_KEY, Env, closeio_spec, put_secret

# 4,500 labels of 60-character keys and values: about 580 KiB of metadata, one watch line.
HUGE_LABELS = {f"k{i:05d}" + "x" * 54: "v" * 60 for i in range(4500)}
FEW_SECONDS = 5.0
# The operator test's bound: its object's own next retry is at least 16 s away.
WITHIN = 8.0


def huge_secret(core: client.CoreV1Api, namespace: str, name: str = "noise") -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=HUGE_LABELS), string_data={"x": "y"}
    )
    core.create_namespaced_secret(namespace, body)


@pytest.fixture
async def kube(control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeAPI]:
    """The operator's own Kubernetes client, logged in with the session's kubeconfig."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    api = KubeAPI(lambda: kopf.login_with_kubeconfig(settings=kopf.OperatorSettings()))
    yield api
    await api.aclose()


async def test_the_watch_skips_an_event_too_large_to_read_and_goes_on(
    kube: KubeAPI, core: client.CoreV1Api, namespace: str
) -> None:
    seen: list[tuple[str, str] | None] = []

    async def watch() -> None:
        async for _, changed in Secrets(kube).watch_names(namespace, 60):
            seen.append(changed)

    task = asyncio.create_task(watch())
    try:
        await eventually(lambda: seen, 10, "the watch's starting point")  # later changes are all reported
        await asyncio.to_thread(huge_secret, core, namespace)
        await asyncio.to_thread(put_secret, core, namespace, "small", {"x": "y"})
        await eventually(lambda: (namespace, "small") in seen or task.done(), 10, "the small Secret's event")
        assert not task.done(), task.exception()
        assert (namespace, "noise") in seen  # named by its first bytes; the rest was skipped, not parsed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_huge_event_wakes_only_its_own_waiters_and_the_others_still_hear_of_theirs(
    kube: KubeAPI, core: client.CoreV1Api, namespace: str
) -> None:
    wakeups = Wakeups()
    waits = SecretWaits(Secrets(kube), wakeups, clusterwide=False)
    waiter, forever, pinger = (namespace, "waiter"), (namespace, "forever"), (namespace, "pinger")
    noisy = (namespace, "noisy")
    woken = {key: wakeups.register(key) for key in (waiter, forever, pinger, noisy)}
    try:
        with (
            waits.interest(namespace, "later", waiter),
            waits.interest(namespace, "never", forever),
            waits.interest(namespace, "ping", pinger),
            waits.interest(namespace, "noise", noisy),
        ):
            # The watch is running once a change of "ping" wakes its waiter.
            pings = iter(range(100))

            async def pinged() -> bool:
                await asyncio.to_thread(put_secret, core, namespace, "ping", {"n": str(next(pings))})
                return woken[pinger].is_set()

            await eventually(pinged, 10, "the shared watch to start", interval=0.2)
            woken[waiter].clear()
            woken[forever].clear()

            await asyncio.to_thread(huge_secret, core, namespace)
            # Named by its first bytes (tenant-findings N13): its own waiter looks again, and nobody
            # else (the flood woke every waiter of the scope, account daemons included, per write).
            await asyncio.wait_for(woken[noisy].wait(), 10)
            assert not woken[forever].is_set()
            woken[waiter].clear()
            await asyncio.to_thread(put_secret, core, namespace, "later", {"apiKey": "k"})
            await asyncio.wait_for(woken[waiter].wait(), FEW_SECONDS)
    finally:
        await waits.close()


def retries_waiting_for_a_secret(env: Env) -> float:
    assert env.operator is not None
    for family in text_string_to_metric_families(env.operator.metrics()):
        for sample in family.samples:
            if sample.name == "oco_retries_total" and sample.labels.get("reason") == "WaitingForSecret":
                return float(sample.value)
    return 0.0


@pytest.mark.slow
def test_an_object_waiting_for_a_secret_is_ready_within_seconds_after_a_huge_secret(env: Env) -> None:
    env.ready_inputs()
    # Another object keeps the namespace's watch wanted all along (a dead one was never replaced
    # while someone waited): its token Secret's name is taken, so it waits for that Secret to go.
    put_secret(env.core, env.namespace, "taken", {"token": "someone-elses"})
    env.instances.create("forever", closeio_spec(tokenSecret={"name": "taken"}))
    env.instances.wait_condition("forever", "Stalled", "True", reason="SecretConflict")
    later = [{"key": "username", "valueFrom": {"secretKeyRef": {"name": "later", "key": "apiKey"}}}]
    env.instances.create("waiter", closeio_spec(configuration=later))
    # The only object retrying while waiting for a Secret: after its fifth attempt, its own next
    # one is 16 to 32 s away, so only the watch can make it Ready within a few seconds.
    wait_until(lambda: retries_waiting_for_a_secret(env) >= 5, 90, "the waiter's fifth attempt")

    huge_secret(env.core, env.namespace)
    put_secret(env.core, env.namespace, "later", {"apiKey": CLOSEIO_API_KEY})
    started = time.monotonic()
    env.instances.wait_ready("waiter", timeout=30)
    seconds = time.monotonic() - started
    print(f"Ready {seconds:.1f}s after its Secret appeared, after a Secret with 580 KiB of labels")
    assert seconds < WITHIN
