"""An account's pass, called directly (reconciler/account.py `account_pass`): its verdict from the
spec, the Secret and one platform call, against the API server and the simulator over HTTP.
The loop around it (wake-ups, the status it writes, its users) is tests/integration/test_accounts.py's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import kopf
import pytest
from kubernetes import client

from connector_operator.api.account import AccountKind
from connector_operator.api.names import GROUP, PLURAL, VERSION
from connector_operator.api.status import Reason
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.outcome import Kind
from connector_operator.handlers import accounts
from connector_operator.reconciler import account
from connector_operator.reconciler.account import VERIFIED, account_pass
from tests.fixtures.operator import Instances
from tests.integration.support import (
    ACCOUNT_SECRET,
    CLOSEIO_API_KEY,
    CLOSEIO_SECRET,
    account_values,
    cluster_account,
    instance_spec,
    put_secret,
    secret_data,
)
from tests.reconciler.kopfstandin import Operator

SECRET = "team-account"


def key(op: Operator, kind: AccountKind = AccountKind.CONNECTOR_ACCOUNT) -> AccountKey:
    return AccountKey(kind, op.namespace if kind is AccountKind.CONNECTOR_ACCOUNT else "", "team")


def calls(op: Operator) -> int:
    return sum(op.simulator.control.counters().values())


async def verdict(
    op: Operator, spec: dict[str, Any], account: AccountKey | None = None, **kwargs: Any
) -> Any:
    account = account or key(op)
    return await account_pass(
        op.runtime, account, spec, op.runtime.accounts.state(account), known=None, **kwargs
    )


async def test_secrets_the_platform_accepts_make_the_account_ready_with_one_call(operator: Operator) -> None:
    op = operator
    put_secret(op.core, op.namespace, SECRET, account_values(op.simulator))
    outcome = await verdict(op, {"credentialsSecretRef": {"name": SECRET}})
    assert outcome.kind is Kind.SUCCESS
    assert outcome.message == VERIFIED
    assert calls(op) == 1  # one search for a tag nobody carries
    state = op.runtime.accounts.state(key(op))
    assert state.loaded
    assert state.secrets() == {f"{op.namespace}/{SECRET}": account_values(op.simulator)}  # those two only


async def test_a_known_verdict_on_the_same_secrets_costs_no_call(operator: Operator) -> None:
    op = operator
    put_secret(op.core, op.namespace, SECRET, account_values(op.simulator))
    spec = {"credentialsSecretRef": {"name": SECRET}}
    first = await verdict(op, spec)
    again = await account_pass(op.runtime, key(op), spec, op.runtime.accounts.state(key(op)), known=first)
    assert again is first
    assert calls(op) == 1
    # New secrets are verified at once, whatever was known.
    put_secret(op.core, op.namespace, SECRET, {**account_values(op.simulator), "userSecret": "rotated"})
    rotated = await account_pass(op.runtime, key(op), spec, op.runtime.accounts.state(key(op)), known=first)
    assert rotated is not first
    assert calls(op) == 2


async def test_refused_secrets_stall_and_a_fresh_rotation_retries_instead(operator: Operator) -> None:
    op = operator
    put_secret(op.core, op.namespace, SECRET, {"userSecret": "wrong", "organizationSecret": "wrong"})
    spec = {"credentialsSecretRef": {"name": SECRET}}
    refused = await verdict(op, spec)
    assert (refused.kind, refused.reason) == (Kind.STALLED, Reason.CREDENTIALS_REJECTED)
    assert "401" in refused.message
    state = op.runtime.accounts.state(key(op))
    state.changed_at = time.monotonic()  # the Secret changed a moment ago: a rotation reaching us
    rotating = await verdict(op, spec)
    assert (rotating.kind, rotating.reason) == (Kind.RETRYING, Reason.CREDENTIALS_REJECTED)
    assert "rotation" in rotating.message


async def test_a_missing_secret_waits_without_calling_the_platform(operator: Operator) -> None:
    op = operator
    outcome = await verdict(op, {"credentialsSecretRef": {"name": SECRET}})
    assert (outcome.kind, outcome.reason) == (Kind.RETRYING, Reason.WAITING_FOR_SECRET)
    assert calls(op) == 0


async def test_an_invalid_spec_or_a_host_not_allowed_leaves_no_account_to_use(operator: Operator) -> None:
    op = operator
    put_secret(op.core, op.namespace, SECRET, account_values(op.simulator))
    invalid = await verdict(op, {"credentialsSecretRef": {}})
    assert (invalid.kind, invalid.reason) == (Kind.STALLED, Reason.INVALID_SPEC)
    assert "credentialsSecretRef" in invalid.message
    elsewhere = {"credentialsSecretRef": {"name": SECRET}, "apiURL": "https://evil.example/elements/api-v2"}
    refused = await verdict(op, elsewhere)
    assert (refused.kind, refused.reason) == (Kind.STALLED, Reason.API_HOST_NOT_ALLOWED)
    state = op.runtime.accounts.state(key(op))
    assert state.spec is None  # its instances must not use it
    assert state.secret is None
    assert calls(op) == 0


async def test_a_cluster_account_may_not_point_at_another_namespaces_secret(operator: Operator) -> None:
    op = operator
    cluster = key(op, AccountKind.CLUSTER_CONNECTOR_ACCOUNT)
    spec = {"credentialsSecretRef": {"name": SECRET, "namespace": "kube-system"}}
    outcome = await verdict(op, spec, cluster)
    assert (outcome.kind, outcome.reason) == (Kind.STALLED, Reason.INVALID_SPEC)
    assert "'kube-system' is not the operator's namespace" in outcome.message
    assert calls(op) == 0


async def test_a_cluster_account_counts_and_is_held_only_by_the_users_it_serves(operator: Operator) -> None:
    """tenant-findings N11: an object naming a ClusterConnectorAccount from a namespace it does not
    select was counted in its status (instances, usedBy) and refused its deletion. Now only what
    it serves (or what it made an instance for) counts; every object naming it is still woken
    when it changes (its selector may serve them now)."""
    op = operator
    name = shared_account(op)
    assert (await op.account(name)).kind is Kind.SUCCESS
    ref = {"kind": "ClusterConnectorAccount", "name": name}
    op.instances.create("crm", instance_spec(accountRef=ref))
    await op.ready("crm", passes=1)
    elsewhere = f"t-intruder-{uuid.uuid4().hex[:8]}"
    op.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=elsewhere)))
    Instances(op.instances.custom.api_client, elsewhere).create("blocker", instance_spec(accountRef=ref))

    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name)
    index = await users_index(op, op.namespace, elsewhere)
    assert {(u.namespace, u.name) for u in account.users_of(key, index)} == {
        (op.namespace, "crm"),
        (elsewhere, "blocker"),
    }
    assert [(u.namespace, u.name) for u in await account.served(op.runtime, key, index)] == [
        (op.namespace, "crm")
    ]
    with pytest.raises(kopf.TemporaryError) as refused:
        await accounts.delete_cluster_account(name=name, memo=op.memo, account_users=index)
    assert f"{op.namespace}/crm" in str(refused.value)
    assert "blocker" not in str(refused.value)

    assert await op.delete("crm") is None
    index = await users_index(op, op.namespace, elsewhere)
    await accounts.delete_cluster_account(name=name, memo=op.memo, account_users=index)  # not held


async def users_index(op: Operator, *namespaces: str) -> dict[AccountKey, list[account.User]]:
    """kopf's `account_users` index over the objects of `namespaces`, made by the operator's handler."""
    index: dict[AccountKey, list[account.User]] = {}
    for namespace in namespaces:
        listed = op.instances.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        for raw in listed["items"]:
            body = kopf.Body(raw)
            meta = raw["metadata"]
            entry = await accounts.account_users(
                namespace=namespace, name=meta["name"], spec=body.spec, body=body, memo=op.memo
            )
            for found, user in entry.items():
                index.setdefault(found, []).append(user)
    return index


def shared_account(op: Operator) -> str:
    """A ClusterConnectorAccount serving the test's namespace, its Secret and the instances' input
    Secret; its name (deleted after the test: tests/fixtures/kubernetes.py)."""
    name = f"acct-{uuid.uuid4().hex[:8]}"
    put_secret(op.core, op.namespace, ACCOUNT_SECRET, account_values(op.simulator))
    put_secret(op.core, op.namespace, CLOSEIO_SECRET, {"apiKey": CLOSEIO_API_KEY})
    cluster_account(op.instances.custom, name, op.namespace, selects=op.namespace)
    return name


def exported(op: Operator) -> str | None:
    return (secret_data(op.core, op.namespace, "exporter-token") or {}).get("H")


async def test_revoking_secret_export_withdraws_the_token_secret_that_holds_them(operator: Operator) -> None:
    """tenant-findings N15: after the platform team revoked `allowSecretExport`, the account secrets
    already rendered into a team's token Secret stayed there. Now the refused object's token
    Secret, if it renders them, is deleted; it comes back once the account allows it again."""
    op = operator
    custom = op.instances.custom
    name = shared_account(op)

    def allow(export: bool) -> None:
        patch = {"spec": {"allowSecretExport": export}}
        custom.patch_cluster_custom_object(GROUP, VERSION, "clusterconnectoraccounts", name, patch)

    allow(True)
    assert (await op.account(name)).kind is Kind.SUCCESS
    header = {"template": {"includeAccountSecrets": True, "data": {"H": "User {{ userSecret }}"}}}
    ref = {"kind": "ClusterConnectorAccount", "name": name}
    op.instances.create("exporter", instance_spec(accountRef=ref, tokenSecret=header))
    await op.ready("exporter", passes=1)
    assert (secret_data(op.core, op.namespace, "exporter-token") or {})[
        "H"
    ] == f"User {op.simulator.user_secret}"

    allow(False)
    await op.account(name)
    condition = await op.condition("exporter", "Stalled", "True", reason="AccountNotAllowed", passes=1)
    assert "allowSecretExport" in condition["message"]
    assert secret_data(op.core, op.namespace, "exporter-token") is None
    assert "SecretWithdrawn" in op.events.reasons("exporter")

    allow(True)
    await op.account(name)
    await op.ready("exporter", passes=1)
    assert (secret_data(op.core, op.namespace, "exporter-token") or {})[
        "H"
    ] == f"User {op.simulator.user_secret}"


async def test_after_a_start_an_instance_waits_for_its_listed_account_instead_of_reading_it_missing(
    operator: Operator,
) -> None:
    """Issue 23's upgrade test found it: kopf watches each kind on its own, so after a start an
    instance's events could come before its account's, and every instance of an account read
    AccountNotFound for a second (two status writes each, kstatus InProgress). The start lists the
    accounts first (handlers/setup.py); an instance of a listed account waits, writing nothing,
    until the account is loaded; one of an account that did not exist is judged at once."""
    op = operator
    name = shared_account(op)
    await op.account(name)
    op.instances.create("crm", instance_spec(accountRef={"kind": "ClusterConnectorAccount", "name": name}))
    await op.ready("crm", passes=3)
    before = op.instances.get("crm")
    assert before is not None

    await op.restart()  # nothing of the accounts is known, but what the start listed
    shared = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name)
    op.runtime.accounts.listed, op.runtime.accounts.listed_at = frozenset({shared}), time.monotonic()
    await op.run("crm")
    assert op.instances.get("crm") == before  # not judged, nothing written
    assert op.runtime.accounts.loading(shared)

    await op.account(name)  # the account's loop loads it
    assert not op.runtime.accounts.loading(shared)
    await op.run("crm")
    after = op.instances.get("crm")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    op.instances.create(
        "other", instance_spec(accountRef={"kind": "ClusterConnectorAccount", "name": "never"})
    )
    await op.condition("other", "Reconciling", "True", reason="AccountNotFound", passes=1)
