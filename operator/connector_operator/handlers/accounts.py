"""kopf handlers for ConnectorAccount and ClusterConnectorAccount: the index of which objects use
which account, a daemon per account that runs its loop (reconciler/account.py), and a deletion
that waits while instances use the account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from connector_operator import logcontext
from connector_operator.api.account import AccountKind
from connector_operator.api.meta import Meta
from connector_operator.api.names import ACCOUNT_PLURAL, CLUSTER_ACCOUNT_PLURAL, GROUP, PLURAL, VERSION
from connector_operator.api.spec import parse_spec
from connector_operator.domain.accounts import AccountKey, account_key
from connector_operator.engine.accounts import waiter
from connector_operator.reconciler import account, series
from connector_operator.reconciler.runtime import Runtime

ACCOUNTS = (GROUP, VERSION, ACCOUNT_PLURAL)
CLUSTER_ACCOUNTS = (GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL)
Users = kopf.Index[AccountKey, account.User]


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def account_users(
    namespace: str, name: str, spec: kopf.Spec, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> dict[AccountKey, account.User]:
    """Account -> the ConnectorInstances naming it (which of them it counts: `account.served`)."""
    runtime: Runtime | None = memo.get("runtime")
    try:
        parsed = parse_spec(dict(spec))
    except ValidationError:
        return {}
    key = account_key(parsed, namespace, runtime.settings.default_account if runtime else None)
    deleting = Meta.of(body).deleting
    if key is None:
        return {}
    status = body.get("status")
    bound = isinstance(status, Mapping) and status.get("account") == key.status_name
    if runtime is not None and runtime.accounts.users.get((namespace, name)) != (key, deleting, bound):
        # A new user, one going away, or one whose instance now exists through it: the account's
        # status (instances, usedBy) follows.
        runtime.accounts.users[(namespace, name)] = (key, deleting, bound)
        runtime.wakeups.wake(waiter(key))
    return {key: account.User(namespace, name, deleting, parsed.connector_key, bound)}


@kopf.on.event(*ACCOUNTS)  # type: ignore[arg-type]
async def account_changed(
    namespace: str, name: str, type: str | None, body: kopf.Body, memo: kopf.Memo, account_users: Users,
    **_: Any,
) -> None:  # fmt: skip
    key = AccountKey(AccountKind.CONNECTOR_ACCOUNT, namespace, name)
    _changed(memo, key, type, body, account_users)


@kopf.on.event(*CLUSTER_ACCOUNTS)  # type: ignore[arg-type]
async def cluster_account_changed(
    name: str, type: str | None, body: kopf.Body, memo: kopf.Memo, account_users: Users, **_: Any
) -> None:
    _changed(memo, AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name), type, body, account_users)


def _changed(memo: kopf.Memo, key: AccountKey, event: str | None, body: kopf.Body, users: Users) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return
    series.observe_account((key.kind.value, key.namespace, key.name), event, body)
    if event == "DELETED":
        runtime.accounts.forget(key)
        runtime.gates.forget(key)
        account.wake_users(runtime, key, users)  # they find it gone: AccountNotFound
    else:
        runtime.wakeups.wake(waiter(key))


@kopf.daemon(*ACCOUNTS, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def run_account(
    body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, account_users: Users, **_: Any
) -> None:
    meta = Meta.of(body)
    logcontext.bind(meta.namespace, meta.name, meta.uid)
    key = AccountKey(AccountKind.CONNECTOR_ACCOUNT, meta.namespace, meta.name)
    await account.serve(memo["runtime"], key, body, stopped, account_users)


@kopf.daemon(*CLUSTER_ACCOUNTS, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def run_cluster_account(
    name: str, uid: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo,
    account_users: Users, **_: Any,
) -> None:  # fmt: skip
    logcontext.bind("", name, uid)
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name)
    await account.serve(memo["runtime"], key, body, stopped, account_users)


@kopf.on.delete(*ACCOUNTS, id="delete_account")  # type: ignore[arg-type]
async def delete_account(namespace: str, name: str, memo: kopf.Memo, account_users: Users, **_: Any) -> None:
    key = AccountKey(AccountKind.CONNECTOR_ACCOUNT, namespace, name)
    await _refuse_while_used(memo["runtime"], key, account_users)


@kopf.on.delete(*CLUSTER_ACCOUNTS, id="delete_cluster_account")  # type: ignore[arg-type]
async def delete_cluster_account(name: str, memo: kopf.Memo, account_users: Users, **_: Any) -> None:
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name)
    await _refuse_while_used(memo["runtime"], key, account_users)


async def _refuse_while_used(runtime: Runtime, key: AccountKey, users: Users) -> None:
    """The finalizer stays while any instance the account serves uses it, those being deleted
    included: they still need it to delete their remote instances."""
    using = await account.served(runtime, key, users)
    if using:
        shown = ", ".join(f"{user.namespace}/{user.name}" for user in using[: account.USED_BY_SHOWN])
        raise kopf.TemporaryError(f"{key} is used by {len(using)} ConnectorInstance(s): {shown}", delay=10)
