"""The operator's memory does not grow with what tenants put into Secrets (issue 9 review, HIGH).

A tenant can label her own Secrets `openconnectors.io/watch` (the operator's watch selects on the
label's existence) and can reference big Secrets of her own from her ConnectorInstances. Before
the fix the watch cache kept every such Secret's decoded data: 120 Secrets of 1 MB took the
operator over the chart's 384 MiB memory limit, and a restart (whose initial listing replays
them all) peaked at about 700 MiB: an OOM kill and a crash loop, for every tenant.

Measured from outside, as the kernel sees it: the peak resident set (VmHWM) of the operator
process, once everything it was sent has arrived (a referenced Secret changed afterwards, and
that change reaching the platform shows the watch delivered all that came before it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from tests.fixtures.operator import wait_until
from tests.integration.support import CLOSEIO_SECRET, Env, closeio_spec, put_secret, remote

# The chart's memory limit is 384 MiB; the operator must stay well below it, whatever tenants do.
PEAK_LIMIT_MIB = 256
JUNK = 120  # Secrets the tenant labels herself
BIG = 24  # Secrets of hers that her objects reference (a small key beside a big one)
SIZE = 1_000_000
TENANT_LABEL = "test.openconnectors.io/tenant-junk"


def memory_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the process started) of `pid`, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def blob(index: int) -> str:
    return chr(ord("a") + index % 26) * SIZE


def create_secret(env: Env, name: str, data: dict[str, str], labels: dict[str, str]) -> None:
    env.core.create_namespaced_secret(
        env.namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data=data),
    )


def referencing(secret: str, key: str) -> dict[str, object]:
    ref = {"secretKeyRef": {"name": secret, "key": key}}
    return closeio_spec(configuration=[{"key": "username", "valueFrom": ref}])


def delivered(env: Env, instance_id: int, value: str) -> None:
    """Change the referenced Secret and wait until the change reached the platform: the Secret
    watch delivers in order, so everything sent before it has arrived."""
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": value})
    wait_until(
        lambda: remote(env.simulator, instance_id)["configuration"]["username"] == value,
        timeout=60,
        what=f"the Secret change {value!r} to reach the platform",
    )


@pytest.mark.slow
def test_tenant_secrets_do_not_grow_the_operator_memory(env: Env) -> None:
    assert env.operator is not None
    assert env.operator.process is not None
    instance_id = env.create_ready()["status"]["instanceID"]

    # Her objects reference big Secrets of hers: the operator reads, labels and holds them.
    for index in range(BIG):
        create_secret(env, f"big-{index}", {"apiKey": f"key-{index}", "blob": blob(index)}, {})
        env.instances.create(f"big-{index}", referencing(f"big-{index}", "apiKey"))
    env.instances.create("too-big", referencing("big-0", "blob"))
    for index in range(BIG):
        ready = env.instances.wait_ready(f"big-{index}", timeout=60)
        assert remote(env.simulator, ready["status"]["instanceID"])["configuration"]["username"] == (
            f"key-{index}"
        )
    stalled = env.instances.wait_condition("too-big", "Stalled", reason="InvalidSpec", timeout=60)
    assert "username" in stalled["message"]

    # Her own Secrets, labelled with the operator's watch label (a value it never removes).
    for index in range(JUNK):
        labels = {"openconnectors.io/watch": "token", TENANT_LABEL: "yes"}
        create_secret(env, f"junk-{index}", {"blob": blob(index)}, labels)
    try:
        delivered(env, instance_id, "key-after-the-junk")
        pid = env.operator.process.pid
        peak, now = memory_mib(pid, "VmHWM"), memory_mib(pid, "VmRSS")
        print(f"operator: {now:.0f} MiB resident, peak {peak:.0f} MiB")
        assert peak < PEAK_LIMIT_MIB, f"peak RSS {peak:.0f} MiB with tenants' big Secrets"

        # A restart: the initial listing replays every labelled Secret.
        env.operator.stop()
        restarted = env.start_operator()
        assert restarted.process is not None
        delivered(env, instance_id, "key-after-the-restart")
        for index in range(BIG):  # still Ready, and served the real values
            env.instances.wait_ready(f"big-{index}", timeout=60)
        env.instances.wait_condition("too-big", "Stalled", reason="InvalidSpec")
        pid = restarted.process.pid
        peak, now = memory_mib(pid, "VmHWM"), memory_mib(pid, "VmRSS")
        print(f"restarted operator: {now:.0f} MiB resident, peak {peak:.0f} MiB")
        assert peak < PEAK_LIMIT_MIB, f"peak RSS {peak:.0f} MiB after a restart"
    finally:
        # 120 MB less in the session's etcd for the tests that follow.
        env.core.delete_collection_namespaced_secret(env.namespace, label_selector=TENANT_LABEL)
