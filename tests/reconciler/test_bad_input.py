"""Every way a user can get a ConnectorInstance wrong ends in a clear condition (moved here from
tests/integration: the passes in-process, pass by pass, against the API server and the simulator).

Waiting states (a Secret or key not there yet) recover at the next pass once the input appears;
terminal states (rejected by the platform) stay put without retrying until the spec or a
referenced Secret changes, and then recover. How fast a Secret's appearance wakes the object (a
watch on that one Secret) is tests/integration/test_secret_waits.py's.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    account_secret,
    account_values,
    closeio_spec,
    put_secret,
    ready_inputs,
    secret_data,
)
from tests.reconciler.kopfstandin import Operator


async def test_missing_secret_waits_and_recovers_when_it_appears(operator: Operator) -> None:
    op = operator
    account_secret(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    condition = await op.condition("crm", "Reconciling", "True", reason="WaitingForSecret", passes=1)
    assert f"Secret '{CLOSEIO_SECRET}'" in condition["message"]
    assert "does not exist" in condition["message"]
    assert op.instances.condition("crm", "Ready")["status"] == "False"
    assert op.instances.condition("crm", "Stalled")["status"] == "False"
    assert op.simulator.control.counters().get("POST /instances", 0) == 0

    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    await op.ready("crm", passes=1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"other": "x"}, "has no key 'apiKey'"),
        ({"apiKey": "   "}, "key 'apiKey' (configuration 'username') is empty"),
    ],
    ids=["missing-key", "empty-value"],
)
async def test_missing_or_empty_key_waits_and_recovers_when_fixed(
    operator: Operator, data: dict[str, str], expected: str
) -> None:
    op = operator
    account_secret(op.core, op.namespace, op.simulator)
    put_secret(op.core, op.namespace, CLOSEIO_SECRET, data)
    op.instances.create("crm", closeio_spec())
    condition = await op.condition("crm", "Reconciling", "True", reason="WaitingForSecret", passes=1)
    assert expected in condition["message"]

    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    await op.ready("crm", passes=1)


async def test_configuration_rejected_by_the_platform_is_stalled_until_fixed(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(configuration=[{"key": "pagination.max", "value": "50"}]))
    condition = await op.condition("crm", "Stalled", "True", reason="ConfigurationRejected", passes=1)
    assert "username" in condition["message"]
    obj = op.instances.get("crm")
    assert obj is not None
    assert obj["status"]["observedGeneration"] == 1  # judged: kstatus reads this as Failed, not in progress
    assert op.instances.condition("crm", "Reconciling")["status"] == "False"

    # Touching a referenced Secret without changing what is sent does not retry the rejected request.
    put_secret(op.core, op.namespace, ACCOUNT, {**account_values(op.simulator), "unrelated": "x"})
    await op.run("crm")
    assert op.simulator.control.counters()["POST /instances"] == 1
    op.instances.patch_spec("crm", closeio_spec())
    await op.ready("crm", passes=1)
    assert op.simulator.control.counters()["POST /instances"] == 2  # the rejected one and the fixed one


async def test_unknown_connector_is_stalled(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(connectorKey="no-such-connector"))
    condition = await op.condition("crm", "Stalled", "True", reason="ConnectorNotFound", passes=1)
    assert "no-such-connector" in condition["message"]
    op.instances.patch_spec("crm", {"connectorKey": "closeio"})
    await op.ready("crm", passes=1)


async def test_rejected_account_secrets_are_stalled_until_the_secret_is_fixed(operator: Operator) -> None:
    op = operator
    wrong = {"userSecret": "wrong-user", "organizationSecret": "wrong-org"}
    put_secret(op.core, op.namespace, ACCOUNT, wrong)
    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    op.instances.create("crm", closeio_spec())
    condition = await op.condition("crm", "Stalled", "True", reason="CredentialsRejected", passes=1)
    assert "401" in condition["message"]
    await op.run("crm")  # stalled: another pass on the same secrets calls nothing
    attempts = sum(op.simulator.control.counters().values())

    account_secret(op.core, op.namespace, op.simulator)  # the right secrets: the change clears the stall
    await op.ready("crm", passes=1)
    assert attempts <= 2  # one lookup, refused; no retry storm while stalled


async def test_an_unmanaged_secret_in_the_way_is_never_overwritten(operator: Operator) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    put_secret(op.core, op.namespace, "crm-token", {"token": "someone-elses", "extra": "keep"})
    op.instances.create("crm", closeio_spec())
    condition = await op.condition("crm", "Stalled", "True", reason="SecretConflict", passes=1)
    assert "crm-token" in condition["message"]
    assert op.instances.condition("crm", "Ready")["status"] == "False"
    obj = op.instances.get("crm")
    assert obj is not None
    assert obj["status"]["instanceID"]  # the remote instance is recorded all the same
    assert secret_data(op.core, op.namespace, "crm-token") == {"token": "someone-elses", "extra": "keep"}

    op.core.delete_namespaced_secret("crm-token", op.namespace)
    await op.ready("crm", passes=1)
    token = secret_data(op.core, op.namespace, "crm-token")
    assert token is not None
    assert token["token"]


async def test_tokens_and_values_survive_a_stall_without_half_written_state(operator: Operator) -> None:
    """A spec update the platform rejects leaves the working instance and its token alone."""
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec())
    ready = await op.ready("crm", passes=1)
    token = secret_data(op.core, op.namespace, "crm-token")

    op.simulator.control.fail_next("PUT", 1, status=400)
    op.instances.patch_spec(
        "crm", {"events": {"enabled": True, "vendorType": "polling", "callbackURL": "http://x"}}
    )
    await op.condition("crm", "Stalled", "True", reason="ConfigurationRejected", passes=1)
    assert op.instances.condition("crm", "Ready")["status"] == "True"  # the instance still works
    assert secret_data(op.core, op.namespace, "crm-token") == token
    obj = op.instances.get("crm")
    assert obj is not None
    assert obj["status"]["instanceID"] == ready["status"]["instanceID"]
    assert obj["status"]["observedGeneration"] == 2  # generation 2 judged


async def test_a_value_that_is_not_text_is_named_as_such_not_as_empty(operator: Operator) -> None:
    """Issue 9, finding 14: binary data was reported as "is empty"."""
    op = operator
    account_secret(op.core, op.namespace, op.simulator)
    binary = client.V1Secret(
        metadata=client.V1ObjectMeta(name=CLOSEIO_SECRET),
        data={"apiKey": base64.b64encode(b"\xff\xfe\x00k").decode()},
    )
    op.core.create_namespaced_secret(op.namespace, binary)
    op.instances.create("crm", closeio_spec())
    condition = await op.condition("crm", "Reconciling", "True", reason="WaitingForSecret", passes=1)
    assert "key 'apiKey' (configuration 'username') is not UTF-8 text" in condition["message"]

    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    await op.ready("crm", passes=1)
