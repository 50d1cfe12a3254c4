"""The operator sees the Secrets it uses and no others.

Its Secret watch carries a server-side label selector, so an unrelated Secret is never sent to
it: not at start-up, not when it changes. The proof reads the operator's DEBUG log, in which
kopf names every Secret event it processes, after a change that must arrive has arrived.
"""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from tests.fixtures.operator import Instances, OperatorProcess, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import CLOSEIO_SECRET, closeio_spec, put_secret, ready_inputs, remote


def test_unrelated_secrets_never_reach_the_operator(
    start_operator: Callable[..., OperatorProcess],
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
) -> None:
    for index in range(5):
        put_secret(core, namespace, f"bystander-{index}", {"password": "not-for-the-operator"})
    ready_inputs(core, namespace, simulator)
    operator = start_operator("--log-level", "DEBUG")
    instances.create("crm", closeio_spec())
    instance_id = instances.wait_ready("crm")["status"]["instanceID"]

    put_secret(core, namespace, "bystander-0", {"password": "changed"})
    put_secret(core, namespace, CLOSEIO_SECRET, {"apiKey": "key-after-unrelated-change"})
    wait_until(
        lambda: remote(simulator, instance_id)["configuration"]["username"] == "key-after-unrelated-change",
        what="the referenced Secret's change",
    )
    log = operator.log()
    assert f"[{namespace}/{CLOSEIO_SECRET}]" in log  # the referenced Secret's events are logged
    assert "bystander-" not in log
    labels = core.read_namespaced_secret("bystander-0", namespace).metadata.labels or {}
    assert "openconnectors.io/watch" not in labels
