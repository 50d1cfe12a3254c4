"""Accounts (issue 10): the platform team owns the credentials, teams reference them.

On the real API server, with the simulator over HTTP and the operator as a process: a cluster
account serves the namespaces its selector picks and refuses the others without a platform call;
a namespaced account; the default account; a change of the account's Secret reaches every
instance of the account; an account in use cannot be deleted; a stalled account waits for a
change instead of passing again at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.fixtures.operator import Instances, wait_until
from tests.integration.support import (
    ACCOUNT_SECRET,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    Env,
    account_secret,
    account_values,
    apiserver_requests,
    closeio_spec,
    cluster_account,
    hand_made,
    instance_spec,
    put_secret,
    remotes_for,
    secret_data,
)

GROUP, VERSION = "openconnectors.io", "v1beta1"


def account_condition(custom: client.CustomObjectsApi, name: str, type_: str) -> dict[str, Any]:
    obj = custom.get_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", name)
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


@pytest.fixture
def account_names() -> Callable[[], str]:
    """New cluster account names (tests/fixtures/kubernetes.py deletes the accounts afterwards)."""
    return lambda: f"acct-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def account_name(account_names: Callable[[], str]) -> str:
    return account_names()


@pytest.mark.manual_operator
def test_a_cluster_account_serves_the_namespaces_it_selects(
    env: Env,
    other_namespace: str,
    account_name: str,
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
) -> None:
    env.start_operator("--namespace", other_namespace)
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    cluster_account(custom, account_name, env.namespace, selects=env.namespace)
    wait_until(
        lambda: account_condition(custom, account_name, "Ready").get("status") == "True", what="account Ready"
    )

    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    ref = {"kind": "ClusterConnectorAccount", "name": account_name}
    env.instances.create("crm", instance_spec(accountRef=ref))
    obj = env.instances.wait_ready("crm")
    assert obj["status"]["instanceID"]

    other = Instances(api_client, other_namespace)
    put_secret(env.core, other_namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    posts = env.simulator.control.counters().get("POST /instances", 0)
    other.create("crm", instance_spec(accountRef=ref))
    refused = other.wait_condition("crm", "Stalled", "True", reason="AccountNotAllowed")
    assert "namespaceSelector" in refused["message"]
    assert env.simulator.control.counters().get("POST /instances", 0) == posts

    # In use: deleting the account waits; its status says who uses it.
    custom.delete_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", account_name)
    account = custom.get_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", account_name)
    assert account["metadata"].get("deletionTimestamp")
    assert f"{env.namespace}/crm" in account["status"]["usedBy"]
    env.instances.delete("crm")
    env.instances.wait_gone("crm")
    other.delete("crm")
    other.wait_gone("crm")
    wait_until(
        lambda: (
            not custom.list_cluster_custom_object(
                GROUP, VERSION, "clusterconnectoraccounts", field_selector=f"metadata.name={account_name}"
            )["items"]
        ),
        timeout=30,
        what="the account to be deleted once unused",
    )


@pytest.mark.manual_operator
def test_the_default_account_and_its_secret_reaching_every_instance(
    env: Env, account_name: str, custom: client.CustomObjectsApi
) -> None:
    env.start_operator("--default-account", account_name)
    wrong = {"userSecret": "not-the-user-secret", "organizationSecret": "not-the-org-secret"}
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, wrong)
    cluster_account(custom, account_name, env.namespace, selects=env.namespace)
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    for index in range(3):
        env.instances.create(f"crm-{index}", instance_spec())  # names neither: the default account
    wait_until(
        lambda: account_condition(custom, account_name, "Stalled").get("reason") == "CredentialsRejected",
        what="the account's credentials rejected",
    )
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    for index in range(3):
        env.instances.wait_ready(f"crm-{index}", timeout=15)
    assert account_condition(custom, account_name, "Ready")["status"] == "True"


@pytest.mark.manual_operator
def test_a_namespaced_account(env: Env, custom: client.CustomObjectsApi) -> None:
    env.start_operator()
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorAccount",
        "metadata": {"name": "team"},
        "spec": {"credentialsSecretRef": {"name": ACCOUNT_SECRET}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, env.namespace, "connectoraccounts", body)
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.create("crm", instance_spec(accountRef={"kind": "ConnectorAccount", "name": "team"}))
    env.instances.wait_ready("crm")
    env.instances.create("lost", instance_spec(accountRef={"kind": "ConnectorAccount", "name": "absent"}))
    waiting = env.instances.wait_condition("lost", "Reconciling", "True", reason="AccountNotFound")
    assert "absent" in waiting["message"]
    custom.create_namespaced_custom_object(
        GROUP, VERSION, env.namespace, "connectoraccounts", {**body, "metadata": {"name": "absent"}}
    )
    env.instances.wait_ready("lost", timeout=15)  # reacts when the account appears


@pytest.mark.manual_operator
def test_a_delete_right_after_a_restart_still_deletes_through_the_account(
    env: Env, custom: client.CustomObjectsApi
) -> None:
    """Found by `make chaos`: the create's status write was lost (the operator died right after the
    POST), the object was deleted, and the restarted operator released it before it had loaded the
    account, leaving the remote instance behind. Now it waits for the account."""
    operator = env.start_operator()
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ConnectorAccount",
        "metadata": {"name": "team"},
        "spec": {"credentialsSecretRef": {"name": ACCOUNT_SECRET}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, env.namespace, "connectoraccounts", body)
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.simulator.control.hang_next("POST", 1)  # the platform creates the instance, the answer never comes
    uid = env.instances.create("crm", instance_spec(accountRef={"kind": "ConnectorAccount", "name": "team"}))[
        "metadata"
    ]["uid"]
    wait_until(lambda: remotes_for(env.simulator, uid), what="the platform to have created the instance")
    operator.kill()
    assert "instanceID" not in (env.instances.get("crm").get("status") or {})
    env.instances.delete("crm")

    env.start_operator()
    env.instances.wait_gone("crm", timeout=30)
    assert remotes_for(env.simulator, uid) == []  # deleted through the account, found by its tag


@pytest.mark.manual_operator
def test_stalled_accounts_wait_for_a_change_and_starve_no_one(
    env: Env, account_names: Callable[[], str], custom: client.CustomObjectsApi, api_client: client.ApiClient
) -> None:
    """Found by CI: a ClusterConnectorAccount that never verified had no next check, so after a
    Stalled pass its daemon passed again at once. One pointing at a namespace the operator may not
    read listed that namespace's Secrets thousands of times a second (a watch begun and ended per
    pass); one with rejected credentials asked the platform as fast as its budget allowed. Every
    operator serves every cluster account, so the event loop was theirs: in a full test run, an
    object whose Secret appeared waited 20 s for its next backoff instead of reacting at once."""
    env.start_operator()
    unreadable, rejected = account_names(), account_names()
    cluster_account(custom, unreadable, "kube-system", selects=env.namespace)
    wrong = {"userSecret": "not-the-user-secret", "organizationSecret": "not-the-org-secret"}
    put_secret(env.core, env.namespace, "wrong-account", wrong)
    cluster_account(custom, rejected, env.namespace, selects=env.namespace, secret="wrong-account")
    for name, reason in ((unreadable, "InvalidSpec"), (rejected, "CredentialsRejected")):
        wait_until(partial(stalled_with, custom, name, reason), what=f"{name} Stalled with {reason}")
    lists_before = apiserver_requests(api_client, "LIST", "secrets")
    refused_before = refused_checks(env)

    # Meanwhile an instance (inline account secrets) waits for its Secret, which then appears.
    account_secret(env.core, env.namespace, env.simulator)
    env.instances.create("crm", closeio_spec())
    env.instances.wait_condition("crm", "Reconciling", "True", reason="WaitingForSecret")
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    env.instances.wait_ready("crm", timeout=5)  # the Secret watch wakes it: well within its backoff

    # Over those seconds: a few LISTs of Secrets (the waiting object's shared watch), not
    # thousands, and no second platform call with the rejected secrets.
    assert apiserver_requests(api_client, "LIST", "secrets") - lists_before <= 5
    assert refused_checks(env) == refused_before


def stalled_with(custom: client.CustomObjectsApi, name: str, reason: str) -> bool:
    condition = account_condition(custom, name, "Stalled")
    return condition.get("status") == "True" and condition.get("reason") == reason


def refused_checks(env: Env) -> int:
    return sum(
        1
        for r in env.simulator.control.requests()
        if (r["method"], r["route"], r["status"]) == ("GET", "/instances", 401)
    )


def made_by_hand(simulator_client: httpx.Client, name: str = "made-in-the-ui") -> dict[str, Any]:
    """An instance created outside Kubernetes, as in the Open Connectors UI."""
    response = simulator_client.post("/instances", json=hand_made(name))
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


def test_allowing_adoption_and_export_on_an_account_wakes_its_instances(
    env: Env, simulator_client: httpx.Client, custom: client.CustomObjectsApi
) -> None:
    """The account's spec changes and its instances go on by themselves: the account's daemon
    wakes them (the refusals themselves, pass by pass: tests/reconciler/test_day2.py)."""
    name = f"acct-{uuid.uuid4().hex[:8]}"  # deleted after the test (tests/fixtures/kubernetes.py)
    put_secret(env.core, env.namespace, ACCOUNT_SECRET, account_values(env.simulator))
    put_secret(env.core, env.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    cluster_account(custom, name, env.namespace, selects=env.namespace)
    ref = {"kind": "ClusterConnectorAccount", "name": name}
    wait_until(
        lambda: account_condition(custom, name, "Ready").get("status") == "True", what="account verified"
    )
    victim = made_by_hand(simulator_client, name="another-teams-oauth-instance")
    env.simulator.control.reset_counters()  # the account's own verification call is behind us

    env.instances.create(
        "observer",
        {
            "connectorKey": "closeio",
            "accountRef": ref,
            "instanceID": victim["id"],
            "managementPolicy": "ObserveOnly",
        },
    )
    header = {"template": {"includeAccountSecrets": True, "data": {"H": "User {{ userSecret }}"}}}
    env.instances.create("exporter", instance_spec(accountRef=ref, tokenSecret=header))
    observed = env.instances.wait_condition("observer", "Stalled", reason="AccountNotAllowed")
    assert "allowAdoption" in observed["message"]
    exported = env.instances.wait_condition("exporter", "Stalled", reason="AccountNotAllowed")
    assert "allowSecretExport" in exported["message"]
    assert env.simulator.control.counters() == {}  # not one platform call for either
    assert secret_data(env.core, env.namespace, "observer-token") is None
    assert secret_data(env.core, env.namespace, "exporter-token") is None

    # The platform team allows both: the same objects go on, without a change of their own.
    custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        "clusterconnectoraccounts",
        name,
        {"spec": {"allowAdoption": True, "allowSecretExport": True}},
    )
    env.instances.wait_ready("observer")
    env.instances.wait_ready("exporter")
    assert (secret_data(env.core, env.namespace, "observer-token") or {})["token"] == victim["token"]
    assert (secret_data(env.core, env.namespace, "exporter-token") or {})[
        "H"
    ] == f"User {env.simulator.user_secret}"
