"""OAuth connectors, pass by pass: waiting for a person, a code or a refresh token creating the
instance with one POST, re-authentication in place, and every refusal reported with the command
to run. The consent itself is the simulator's provider page driven over HTTP (the headless browser
and the plugin are tests/integration/test_oauth_e2e.py's)."""

from __future__ import annotations

import json
from time import time_ns
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.integration.support import ACCOUNT, put_secret, ready_inputs, remote, secret_data
from tests.reconciler.kopfstandin import Operator
from tests.simulator.support import consent, create, oauth_code, oauth_configuration

CLIENT_ID, CLIENT_SECRET = "k8s-app", "app-secret-6f1d2c9a"
CALLBACK = "http://127.0.0.1:8765/callback"
REQUESTED = "openconnectors.io/reconcile-requested-at"
WRITES = ("POST /instances", "PUT /instances/{id}", "PATCH /instances/{id}", "DELETE /instances/{id}")


def oauth_spec(*, refresh: bool = False) -> dict[str, Any]:
    grant = (
        {"refreshTokenSecretRef": {"name": "crm-refresh"}}
        if refresh
        else {"authorizationSecretRef": {"name": "crm-auth"}}
    )
    return {
        "connectorKey": "hubspot",
        "credentialsSecretRef": {"name": ACCOUNT},
        "oauth": {
            "appCredentialsSecretRef": {"name": "crm-app"},
            "callbackURL": CALLBACK,
            "scopes": ["contacts", "crm.objects.read"],
            **grant,
        },
    }


@pytest.fixture
def inputs(operator: Operator) -> Operator:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    put_secret(op.core, op.namespace, "crm-app", {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})
    return op


def writes(op: Operator) -> dict[str, int]:
    counters = op.simulator.control.counters()
    return {call: counters.get(call, 0) for call in WRITES}


def authorization_url(obj: dict[str, Any]) -> str:
    url: str = obj["status"]["authorization"]["url"]
    return url


def give_consent(op: Operator, url: str, *, allow: bool = True, state: str | None = None) -> None:
    """What `kubectl openconnectors authorize` does after the provider's redirect."""
    redirect = consent(url, allow=allow)
    data = {"state": state or redirect.params["state"]}
    data |= {"code": redirect.params["code"]} if allow else {"error": redirect.params["error"]}
    put_secret(
        op.core, op.namespace, "crm-auth", {**(secret_data(op.core, op.namespace, "crm-auth") or {}), **data}
    )


async def stalled(op: Operator, reason: str, *, passes: int = 3) -> dict[str, Any]:
    await op.condition("crm", "Stalled", "True", reason=reason, passes=passes)
    obj = op.instances.get("crm")
    assert obj is not None
    return obj


async def test_without_a_grant_the_object_asks_for_a_person_with_the_consent_url(inputs: Operator) -> None:
    op = inputs
    op.simulator.control.reset_counters()
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)

    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "AuthorizationRequired"
    assert f"kubectl openconnectors authorize crm -n {op.namespace}" in ready["message"]
    query = parse_qs(urlsplit(authorization_url(obj)).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["scope"] == ["contacts crm.objects.read"]
    assert len(query["state"][0]) >= 32
    assert CLIENT_SECRET not in json.dumps(obj)
    assert writes(op) == dict.fromkeys(WRITES, 0)
    assert "AuthorizationRequired" in op.events.reasons("crm")
    # Asked once: another pass with nothing new does not ask the platform again.
    await op.run("crm")
    assert op.simulator.control.counters().get("GET /elements/{keyOrId}/oauth/url") == 1


async def test_a_code_creates_the_instance_with_one_post_and_leaves_the_secret(inputs: Operator) -> None:
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    put_secret(op.core, op.namespace, "crm-auth", {"keep": "me"})
    give_consent(op, authorization_url(obj))
    code = secret_data(op.core, op.namespace, "crm-auth")["code"]  # type: ignore[index]
    op.simulator.control.reset_counters()

    obj = await op.ready("crm", passes=2)
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "POST /instances": 1}
    assert secret_data(op.core, op.namespace, "crm-auth") == {"keep": "me"}  # code and state gone
    assert "url" not in obj["status"]["authorization"]
    instance = remote(op.simulator, obj["status"]["instanceID"])
    assert instance["valid"] is True
    assert instance["configuration"]["oauth.api.key"] == CLIENT_ID
    token = secret_data(op.core, op.namespace, "crm-token")
    assert token is not None
    assert token["token"] == instance["token"]
    seen = json.dumps([obj, [event for _, event in op.events], token])
    assert code not in seen
    assert CLIENT_SECRET not in seen
    assert CLIENT_SECRET not in json.dumps(token)


async def test_a_code_from_another_consent_or_a_denial_is_refused_and_discarded(inputs: Operator) -> None:
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    op.simulator.control.reset_counters()

    give_consent(op, authorization_url(obj), state="an-attackers-consent")
    await op.run("crm")
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    stalled_condition = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert "state does not match" in stalled_condition["message"]
    assert secret_data(op.core, op.namespace, "crm-auth") == {}

    give_consent(op, authorization_url(obj), allow=False)
    await op.run("crm")
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    stalled_condition = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")
    assert "consent was not given at the provider (access_denied)" in stalled_condition["message"]
    assert secret_data(op.core, op.namespace, "crm-auth") == {}
    assert writes(op) == dict.fromkeys(WRITES, 0)


async def test_a_code_the_provider_refuses_asks_again(inputs: Operator) -> None:
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    op.simulator.control.set_oauth_code_ttl(0.001)  # every code has expired by the time it is used
    give_consent(op, authorization_url(obj))
    await op.run("crm")
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")["message"]
    assert "the platform refused the grant" in message
    assert "invalid_grant" in message
    assert secret_data(op.core, op.namespace, "crm-auth") == {}
    assert op.simulator.control.instances() == []


async def test_a_refresh_token_creates_the_instance_and_a_refused_one_is_reauthenticated_in_place(
    inputs: Operator,
) -> None:
    op = inputs
    put_secret(op.core, op.namespace, "crm-refresh", {"refreshToken": "refresh-from-elsewhere-1"})
    op.simulator.control.reset_counters()
    op.instances.create("crm", oauth_spec(refresh=True))
    obj = await op.ready("crm", passes=1)
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "POST /instances": 1}
    instance_id = obj["status"]["instanceID"]
    assert remote(op.simulator, instance_id)["externalAuthentication"] == "initial"

    op.simulator.control.revoke_refresh_token(instance_id)
    op.annotate("crm", {REQUESTED: "check-now"})
    obj = await stalled(op, "ReauthenticationRequired", passes=2)
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")["message"]
    assert "crm-refresh" in message
    assert "url" not in obj["status"].get("authorization", {})
    assert "ReauthenticationRequired" in op.events.reasons("crm")

    op.simulator.control.reset_counters()
    put_secret(op.core, op.namespace, "crm-refresh", {"refreshToken": "refresh-from-elsewhere-2"})
    obj = await op.ready("crm", passes=2)
    assert obj["status"]["instanceID"] == instance_id
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PATCH /instances/{id}": 1}
    assert remote(op.simulator, instance_id)["valid"] is True
    assert "Reauthenticated" in op.events.reasons("crm")


async def test_a_revoked_instance_is_reauthenticated_with_a_new_code(inputs: Operator) -> None:
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    give_consent(op, authorization_url(obj))
    obj = await op.ready("crm", passes=2)
    instance_id, tags = obj["status"]["instanceID"], remote(op.simulator, obj["status"]["instanceID"])["tags"]

    op.simulator.control.revoke_refresh_token(instance_id)
    op.annotate("crm", {REQUESTED: "check-now"})
    obj = await stalled(op, "ReauthenticationRequired", passes=2)
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    assert f"kubectl openconnectors authorize crm -n {op.namespace}" in ready["message"]
    op.simulator.control.reset_counters()
    give_consent(op, authorization_url(obj))
    obj = await op.ready("crm", passes=2)
    assert obj["status"]["instanceID"] == instance_id
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PATCH /instances/{id}": 1}
    assert remote(op.simulator, instance_id)["tags"] == tags
    assert secret_data(op.core, op.namespace, "crm-auth") == {}


async def test_a_401_on_the_instance_alone_asks_for_reauthentication_and_on_everything_for_credentials(
    inputs: Operator,
) -> None:
    op = inputs
    put_secret(op.core, op.namespace, "crm-refresh", {"refreshToken": "refresh-from-elsewhere-3"})
    op.instances.create("crm", oauth_spec(refresh=True))
    await op.ready("crm", passes=1)

    op.simulator.control.fail_next("GET", status=401, route="/instances/{id}")
    op.annotate("crm", {REQUESTED: "check-now"})
    obj = await stalled(op, "ReauthenticationRequired", passes=1)
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")["message"]
    assert "the platform refused a call on the instance" in message

    op.simulator.control.fail_next("GET", count=2, status=401)  # the account secrets themselves
    op.annotate("crm", {REQUESTED: "check-again"})
    await stalled(op, "CredentialsRejected", passes=1)


async def test_a_lost_answer_to_the_post_with_the_code_makes_no_second_instance_and_spends_the_code(
    inputs: Operator,
) -> None:
    """The code made the instance; the answer never came. The next pass finds the instance by its
    identity, takes it with one PUT, and the code goes: never sent again as a re-authentication
    (the provider would refuse a used code, and a healthy instance would read as needing one)."""
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    give_consent(op, authorization_url(obj))
    op.simulator.control.reset_counters()
    op.simulator.control.drop_next("POST", after_handling=True)
    obj = await op.ready("crm", passes=3)
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "POST /instances": 1, "PUT /instances/{id}": 1}
    assert len(op.simulator.control.instances()) == 1
    assert secret_data(op.core, op.namespace, "crm-auth") == {}
    await op.run("crm")
    assert op.instances.condition("crm", "Ready")["status"] == "True"
    assert writes(op)["PUT /instances/{id}"] == 1


async def test_an_oauth_instance_made_in_the_ui_is_adopted_then_reauthenticated_in_place(
    inputs: Operator,
) -> None:
    """spec.instanceID with spec.oauth: one PUT takes the instance (no grant needed while it is
    valid); a later grant re-authenticates it, and a new token from the platform reaches the Secret."""
    op = inputs
    with httpx.Client(base_url=op.simulator.api_url, headers=op.simulator.headers, timeout=10.0) as ui:
        made = create(ui, {
            "element": {"key": "hubspot"},
            "name": "made-in-the-ui",
            "configuration": oauth_configuration(CLIENT_ID, CALLBACK),
            "providerData": {"code": oauth_code(ui, "hubspot", client_id=CLIENT_ID, callback=CALLBACK)},
        })  # fmt: skip
    op.simulator.control.reset_counters()
    op.instances.create("crm", {**oauth_spec(), "instanceID": made["id"]})
    obj = await op.ready("crm", passes=1)
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PUT /instances/{id}": 1}

    op.simulator.control.mark_invalid(made["id"])
    op.simulator.control.rotate_token_on_next_update(made["id"])
    op.annotate("crm", {REQUESTED: "check-now"})
    obj = await stalled(op, "ReauthenticationRequired", passes=1)
    op.simulator.control.reset_counters()
    give_consent(op, authorization_url(obj))
    obj = await op.ready("crm", passes=2)
    assert obj["status"]["instanceID"] == made["id"]
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PATCH /instances/{id}": 1}
    token = secret_data(op.core, op.namespace, "crm-token")
    assert token is not None
    assert token["token"] == remote(op.simulator, made["id"])["token"] != made["token"]
    assert "TokenChanged" in op.events.reasons("crm")


async def ready_with_a_code(op: Operator) -> tuple[int, str]:
    """An OAuth object made Ready by a person's consent: its instance ID and first consent URL."""
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    url = authorization_url(obj)
    give_consent(op, url)
    obj = await op.ready("crm", passes=2)
    return obj["status"]["instanceID"], url


async def revoked(op: Operator, instance_id: int) -> dict[str, Any]:
    op.simulator.control.revoke_refresh_token(instance_id)
    op.annotate("crm", {REQUESTED: f"check-{time_ns()}"})
    return await stalled(op, "ReauthenticationRequired", passes=2)


async def test_a_new_consent_gets_a_new_state_and_an_old_pages_code_is_refused(inputs: Operator) -> None:
    op = inputs
    instance_id, first_url = await ready_with_a_code(op)
    obj = await revoked(op, instance_id)
    second_url = authorization_url(obj)
    first_state = parse_qs(urlsplit(first_url).query)["state"][0]
    assert parse_qs(urlsplit(second_url).query)["state"][0] != first_state
    op.simulator.control.reset_counters()
    give_consent(op, first_url)  # a consent page opened before the last grant was used
    await op.run("crm")
    message = (await stalled(op, "ReauthenticationRequired", passes=1))["status"]["conditions"]
    assert any("state does not match" in c["message"] for c in message)
    assert writes(op) == dict.fromkeys(WRITES, 0)


async def test_reads_refused_until_reauthenticated_do_not_keep_a_restarted_operator_from_using_the_code(
    inputs: Operator,
) -> None:
    """Review H2: after a restart the instance is proven this object's by the search, not by a GET
    the platform refuses (401) until the instance has a new grant."""
    op = inputs
    instance_id, _ = await ready_with_a_code(op)
    obj = await revoked(op, instance_id)
    await op.restart()
    op.simulator.control.reset_counters()
    op.simulator.control.fail_next("GET", count=20, status=401, route="/instances/{id}")
    give_consent(op, authorization_url(obj))
    obj = await op.ready("crm", passes=2)
    assert writes(op) == {**dict.fromkeys(WRITES, 0), "PATCH /instances/{id}": 1}
    assert obj["status"]["instanceID"] == instance_id


async def test_a_disabled_instance_is_enabled_before_the_grant_is_spent(inputs: Operator) -> None:
    """Review M1: the platform leaves a re-authenticated instance disabled; enabling first means a
    failed enable keeps the code for the next attempt instead of needing a person again."""
    op = inputs
    instance_id, _ = await ready_with_a_code(op)
    obj = await revoked(op, instance_id)
    op.simulator.control.mark_disabled(instance_id)  # status does not know: no check since
    op.simulator.control.fail_next("PUT", status=503, route="/instances/{id}/enabled")
    give_consent(op, authorization_url(obj))
    await op.condition("crm", "Reconciling", "True", reason="APIUnavailable", passes=1)
    assert "code" in (secret_data(op.core, op.namespace, "crm-auth") or {})
    obj = await op.ready("crm", passes=2)
    assert (remote(op.simulator, instance_id)["valid"], remote(op.simulator, instance_id)["disabled"]) == (
        True,
        False,
    )
    assert secret_data(op.core, op.namespace, "crm-auth") == {}


async def test_the_same_denial_twice_is_removed_both_times(inputs: Operator) -> None:
    """Review M2: a grant already judged that is still in the Secret goes (authorize waits for it)."""
    op = inputs
    op.instances.create("crm", oauth_spec())
    obj = await stalled(op, "AuthorizationRequired", passes=1)
    for _ in range(2):
        give_consent(op, authorization_url(obj), allow=False)
        await op.run("crm")
        assert secret_data(op.core, op.namespace, "crm-auth") == {}


async def test_a_lost_answer_to_the_reauthentication_does_not_send_the_code_again(inputs: Operator) -> None:
    """Review M4: the PUT with the code took effect, its answer was lost; the next pass sees the
    instance valid and spends the code instead of sending it again (the provider would refuse it)."""
    op = inputs
    instance_id, _ = await ready_with_a_code(op)
    obj = await revoked(op, instance_id)
    op.simulator.control.reset_counters()
    op.simulator.control.drop_next("PATCH", after_handling=True, route="/instances/{id}")
    give_consent(op, authorization_url(obj))
    obj = await op.ready("crm", passes=3)
    assert writes(op)["PATCH /instances/{id}"] == 1
    [patch] = [r for r in op.simulator.control.requests() if r["method"] == "PATCH"]
    assert patch["status"] is None  # it was dropped: taken, never answered
    assert "ReauthenticationRequired" not in [c["reason"] for c in obj["status"]["conditions"]]
    assert secret_data(op.core, op.namespace, "crm-auth") == {}


async def test_a_401_on_the_instance_with_the_search_failing_too_is_retried_not_a_verdict(
    inputs: Operator,
) -> None:
    """Review L1: the search that tells whose 401 it is did not answer: neither the account's
    secrets nor the grant are judged, the pass is retried."""
    op = inputs
    await ready_with_a_code(op)
    op.simulator.control.fail_next("GET", status=401, route="/instances/{id}")
    op.simulator.control.fail_next("GET", status=503, route="/instances")
    op.annotate("crm", {REQUESTED: "check-now"})
    await op.condition("crm", "Reconciling", "True", reason="APIUnavailable", passes=1)
    assert op.instances.condition("crm", "Stalled")["status"] == "False"


async def test_a_restart_does_not_make_an_instance_waiting_for_a_person_ready(inputs: Operator) -> None:
    """Re-review 1: a restarted operator has nothing in memory; a status that shows the instance
    broken is checked at once, never taken for Ready."""
    op = inputs
    instance_id, _ = await ready_with_a_code(op)
    await revoked(op, instance_id)
    await op.restart()
    await op.run("crm")
    obj = await stalled(op, "ReauthenticationRequired", passes=1)
    assert obj["status"]["authorization"]["url"]
    assert not any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"]["conditions"])
