"""An account's pass, called directly (reconciler/account.py `account_pass`): its verdict from the
spec, the Secret and one platform call, against the API server and the simulator over HTTP.
The loop around it (wake-ups, the status it writes, its users) is tests/integration/test_accounts.py's.
"""

from __future__ import annotations

import time
from typing import Any

from connector_operator.api.account import AccountKind
from connector_operator.api.status import Reason
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.outcome import Kind
from connector_operator.reconciler.account import VERIFIED, account_pass
from tests.integration.support import account_values, put_secret
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
