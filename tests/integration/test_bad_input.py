"""Every way a user can get a ConnectorInstance wrong ends in a clear condition or a rejection.

Waiting states (a Secret or key not there yet) recover on their own as soon as the input
appears; terminal states (rejected by the platform) stay put without retrying until the spec
or a referenced Secret changes, and then recover.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fixtures.operator import Instances, wait_until
from tests.integration.support import (
    ACCOUNT,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    account_secret,
    account_values,
    closeio_spec,
    put_secret,
    secret_data,
)


def test_missing_secret_waits_and_recovers_when_it_appears(env: Env) -> None:
    account_secret(env.core, env.namespace, env.simulator)
    env.instances.create("crm", closeio_spec())
    condition = env.instances.wait_condition("crm", "Reconciling", "True", reason="WaitingForSecret")
    assert f"Secret '{CLOSEIO_SECRET}'" in condition["message"]
    assert "does not exist" in condition["message"]
    assert env.instances.condition("crm", "Ready")["status"] == "False"
    assert env.instances.condition("crm", "Stalled")["status"] == "False"
    assert env.simulator.control.counters().get("POST /instances", 0) == 0

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    # The wait is a watch on that one Secret, not a poll: it reacts well within the first backoff.
    env.instances.wait_ready("crm", timeout=10)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"other": "x"}, "has no key 'apiKey'"),
        ({"apiKey": "   "}, "key 'apiKey' (configuration 'username') is empty"),
    ],
    ids=["missing-key", "empty-value"],
)
def test_missing_or_empty_key_waits_and_recovers_when_fixed(
    env: Env,
    data: dict[str, str],
    expected: str,
) -> None:
    account_secret(env.core, env.namespace, env.simulator)
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, data)
    env.instances.create("crm", closeio_spec())
    condition = env.instances.wait_condition("crm", "Reconciling", "True", reason="WaitingForSecret")
    assert expected in condition["message"]

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.wait_ready("crm", timeout=10)


def test_configuration_rejected_by_the_platform_is_stalled_until_fixed(env: Env) -> None:
    env.ready_inputs()
    env.instances.create("crm", closeio_spec(configuration=[{"key": "pagination.max", "value": "50"}]))
    condition = env.instances.wait_condition("crm", "Stalled", "True", reason="ConfigurationRejected")
    assert "username" in condition["message"]
    obj = env.instances.get("crm")
    assert obj["status"]["observedGeneration"] == 1  # judged: kstatus reads this as Failed, not in progress
    assert env.instances.condition("crm", "Reconciling")["status"] == "False"

    # Touching a referenced Secret without changing what is sent does not retry the rejected request.
    put_secret(env.core, env.namespace, ACCOUNT, {**account_values(env.simulator), "unrelated": "x"})
    env.instances.patch_spec("crm", closeio_spec())
    env.instances.wait_ready("crm", timeout=10)
    assert env.simulator.control.counters()["POST /instances"] == 2  # the rejected one and the fixed one


def test_unknown_connector_is_stalled(env: Env) -> None:
    env.ready_inputs()
    env.instances.create("crm", closeio_spec(connectorKey="no-such-connector"))
    condition = env.instances.wait_condition("crm", "Stalled", "True", reason="ConnectorNotFound")
    assert "no-such-connector" in condition["message"]
    env.instances.patch_spec("crm", {"connectorKey": "closeio"})
    env.instances.wait_ready("crm", timeout=10)


def test_rejected_account_secrets_are_stalled_until_the_secret_is_fixed(env: Env) -> None:
    put_secret(
        env.core, env.namespace, ACCOUNT, {"userSecret": "wrong-user", "organizationSecret": "wrong-org"}
    )
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.create("crm", closeio_spec())
    condition = env.instances.wait_condition("crm", "Stalled", "True", reason="CredentialsRejected")
    assert "401" in condition["message"]
    attempts = sum(env.simulator.control.counters().values())

    account_secret(
        env.core, env.namespace, env.simulator
    )  # the right secrets: the Secret change clears the stall
    env.instances.wait_ready("crm", timeout=10)
    assert attempts <= 2  # one lookup, refused; no retry storm while stalled


def test_an_unmanaged_secret_in_the_way_is_never_overwritten(env: Env) -> None:
    env.ready_inputs()
    put_secret(env.core, env.namespace, "crm-token", {"token": "someone-elses", "extra": "keep"})
    env.instances.create("crm", closeio_spec())
    condition = env.instances.wait_condition("crm", "Stalled", "True", reason="SecretConflict")
    assert "crm-token" in condition["message"]
    assert env.instances.condition("crm", "Ready")["status"] == "False"
    assert env.instances.get("crm")["status"]["instanceID"]  # the remote instance is recorded all the same
    assert secret_data(env.core, env.namespace, "crm-token") == {"token": "someone-elses", "extra": "keep"}

    env.core.delete_namespaced_secret("crm-token", env.namespace)
    env.instances.wait_ready("crm", timeout=10)
    assert secret_data(env.core, env.namespace, "crm-token")["token"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"apiURL": "ftp://example.com/elements/api-v2"}, "spec.apiURL"),
        ({"connectorKey": "CloseIO"}, "spec.connectorKey"),
        ({"deletionPolicy": "Sometimes"}, "spec.deletionPolicy"),
        ({"events": {"enabled": True, "vendorType": "webhook"}}, "callbackURL is required"),
        ({"tags": ["k8s-uid:spoofed"]}, "reserved"),
        ({"configuration": [{"key": "username"}]}, "exactly one of value and valueFrom"),
        ({"credentialsSecretRef": {}}, "spec.credentialsSecretRef.name"),
    ],
    ids=[
        "api-url-scheme",
        "connector-key-case",
        "deletion-policy",
        "webhook-without-url",
        "reserved-tag",
        "no-value",
        "no-secret-name",
    ],
)
def test_malformed_objects_are_rejected_by_the_api_server(
    instances: Instances, override: dict[str, object], message: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        instances.create("bad", closeio_spec(**override))
    assert rejected.value.status == 422
    assert message in rejected.value.body


def test_tokens_and_values_survive_a_stall_without_half_written_state(env: Env) -> None:
    """A spec update the platform rejects leaves the working instance and its token alone."""
    ready = env.create_ready()
    token = secret_data(env.core, env.namespace, "crm-token")

    env.simulator.control.fail_next("PUT", 1, status=400)
    env.instances.patch_spec(
        "crm", {"events": {"enabled": True, "vendorType": "polling", "callbackURL": "http://x"}}
    )
    env.instances.wait_condition("crm", "Stalled", "True", reason="ConfigurationRejected")
    assert env.instances.condition("crm", "Ready")["status"] == "True"  # the instance still works
    assert secret_data(env.core, env.namespace, "crm-token") == token
    assert env.instances.get("crm")["status"]["instanceID"] == ready["status"]["instanceID"]
    wait_until(
        lambda: env.instances.get("crm")["status"]["observedGeneration"] == 2, what="generation 2 judged"
    )


def test_a_value_that_is_not_text_is_named_as_such_not_as_empty(env: Env) -> None:
    """Issue 9, finding 14: binary data was reported as "is empty"."""
    account_secret(env.core, env.namespace, env.simulator)
    binary = client.V1Secret(
        metadata=client.V1ObjectMeta(name=CLOSEIO_SECRET),
        data={"apiKey": base64.b64encode(b"\xff\xfe\x00k").decode()},
    )
    env.core.create_namespaced_secret(env.namespace, binary)
    env.instances.create("crm", closeio_spec())
    condition = env.instances.wait_condition("crm", "Reconciling", "True", reason="WaitingForSecret")
    assert "key 'apiKey' (configuration 'username') is not UTF-8 text" in condition["message"]

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.wait_ready("crm", timeout=10)
