"""The operator sees the Secrets it uses and no others.

Its Secret watch carries a server-side label selector, so an unrelated Secret is never sent to
it: not at start-up, not when it changes. The proof reads the operator's DEBUG log, in which
kopf names every Secret event it processes, after a change that must arrive has arrived.
"""

from __future__ import annotations

import pytest

from tests.fixtures.operator import wait_until
from tests.integration.support import CLOSEIO_SECRET, Env, closeio_spec, put_secret, remote


@pytest.mark.manual_operator
def test_unrelated_secrets_never_reach_the_operator(env: Env) -> None:
    for index in range(5):
        put_secret(env.core, env.namespace, f"bystander-{index}", {"password": "not-for-the-operator"})
    env.ready_inputs()
    operator = env.start_operator("--log-level", "DEBUG")
    env.instances.create("crm", closeio_spec())
    instance_id = env.instances.wait_ready("crm")["status"]["instanceID"]

    put_secret(env.core, env.namespace, "bystander-0", {"password": "changed"})
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": "key-after-unrelated-change"})
    wait_until(
        lambda: (
            remote(env.simulator, instance_id)["configuration"]["username"] == "key-after-unrelated-change"
        ),
        what="the referenced Secret's change",
    )
    log = operator.log()
    assert f"[{env.namespace}/{CLOSEIO_SECRET}]" in log  # the referenced Secret's events are logged
    assert "bystander-" not in log
    labels = env.core.read_namespaced_secret("bystander-0", env.namespace).metadata.labels or {}
    assert "openconnectors.io/watch" not in labels
