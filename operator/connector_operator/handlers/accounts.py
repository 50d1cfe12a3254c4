"""kopf handlers for ConnectorAccount and ClusterConnectorAccount: a daemon per account, its status,
and a deletion that waits while instances use the account.

The daemon owns the account's credentials: it reads the Secret, verifies the secrets with one
cheap authenticated call (a search for a tag nobody carries: 200 or 404 means "accepted"), keeps
them in `runtime.accounts` for the instances, and wakes every instance of the account when they
change, so a rotation reaches them all within seconds. The Secret's changes reach the daemon
through the shared Secret watch (handlers/secretwaits.py), whatever namespace it lives in.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from connector_operator import logcontext
from connector_operator.api.account import AccountKind, ConnectorAccountStatus, parse_account_spec
from connector_operator.api.names import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    CREDENTIAL_KEYS,
    GROUP,
    PLURAL,
    VERSION,
)
from connector_operator.api.spec import parse_spec
from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import AccountKey, account_key, api_url_of
from connector_operator.domain.inputs import Missing, account_secrets
from connector_operator.domain.outcome import Backoff, Kind, Outcome
from connector_operator.domain.transition import merge_patch
from connector_operator.handlers.accountstate import AccountState, waiter
from connector_operator.handlers.errors import classify
from connector_operator.handlers.runtime import Runtime
from connector_operator.handlers.secretwaits import HeldInterest
from connector_operator.handlers.wakeups import sleep_until
from connector_operator.kube.api import KubeError
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.client import Credentials

logger = logging.getLogger(__name__)

ACCOUNTS = (GROUP, VERSION, ACCOUNT_PLURAL)
CLUSTER_ACCOUNTS = (GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL)
VERIFY_TAG = "k8s-account-check"  # carried by no instance: the search proves the secrets, nothing else
VERIFIED = "The account secrets were verified with the platform"
USED_BY_SHOWN = 10
RECOVERY_QUIET = 10.0  # seconds between two "everyone retry now" of one account
Users = kopf.Index[AccountKey, tuple[str, str, bool]]


@kopf.index(GROUP, VERSION, PLURAL)  # type: ignore[arg-type]
async def account_users(
    namespace: str, name: str, spec: kopf.Spec, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> dict[AccountKey, tuple[str, str, bool]]:
    """Account -> the ConnectorInstances using it: (namespace, name, being deleted)."""
    runtime: Runtime | None = memo.get("runtime")
    try:
        parsed = parse_spec(dict(spec))
    except ValidationError:
        return {}
    key = account_key(parsed, namespace, runtime.settings.default_account if runtime else None)
    deleting = body.get("metadata", {}).get("deletionTimestamp") is not None
    if key is None:
        return {}
    if runtime is not None and runtime.accounts.users.get((namespace, name)) != (key, deleting):
        # A new user, or one going away: the account's status (instances, usedBy) follows.
        runtime.accounts.users[(namespace, name)] = (key, deleting)
        runtime.wakeups.wake(waiter(key))
    return {key: (namespace, name, deleting)}


def users_of(key: AccountKey, index: Users) -> list[tuple[str, str, bool]]:
    return sorted(index.get(key, []))


@kopf.on.event(*ACCOUNTS)  # type: ignore[arg-type]
async def account_changed(
    namespace: str, name: str, type: str | None, memo: kopf.Memo, account_users: Users, **_: Any
) -> None:
    _changed(memo, AccountKey(AccountKind.CONNECTOR_ACCOUNT, namespace, name), type, account_users)


@kopf.on.event(*CLUSTER_ACCOUNTS)  # type: ignore[arg-type]
async def cluster_account_changed(
    name: str, type: str | None, memo: kopf.Memo, account_users: Users, **_: Any
) -> None:
    _changed(memo, AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name), type, account_users)


def _changed(memo: kopf.Memo, key: AccountKey, event: str | None, users: Users) -> None:
    runtime: Runtime | None = memo.get("runtime")
    if runtime is None:
        return
    if event == "DELETED":
        runtime.accounts.forget(key)
        runtime.gates.forget(key)
        _wake_users(runtime, key, users)  # they find it gone: AccountNotFound
    else:
        runtime.wakeups.wake(waiter(key))


@kopf.daemon(*ACCOUNTS, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def run_account(
    namespace: str, name: str, uid: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo,
    account_users: Users, **_: Any,
) -> None:  # fmt: skip
    logcontext.bind(namespace, name, uid)
    await _serve(
        memo["runtime"],
        AccountKey(AccountKind.CONNECTOR_ACCOUNT, namespace, name),
        body,
        stopped,
        account_users,
    )


@kopf.daemon(*CLUSTER_ACCOUNTS, cancellation_timeout=10.0)  # type: ignore[arg-type]
async def run_cluster_account(
    name: str, uid: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo,
    account_users: Users, **_: Any,
) -> None:  # fmt: skip
    logcontext.bind("", name, uid)
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name)
    await _serve(memo["runtime"], key, body, stopped, account_users)


async def _serve(
    rt: Runtime, key: AccountKey, body: kopf.Body, stopped: kopf.DaemonStopped, users: Users
) -> None:
    wake = rt.wakeups.register(waiter(key))
    state = rt.accounts.state(key)
    written = _stored(body.get("status"))
    backoff, attempt = Backoff(rt.settings.backoff_base, rt.settings.backoff_cap), 0
    # The last verdict (Ready, or Stalled) on a (generation, credentials fingerprint): repeated
    # without a platform call until either changes or the resync is due.
    verdict: tuple[tuple[int, str | None], Outcome] | None = None
    next_check = 0.0
    last: tuple[Kind, Reason] | None = None
    interest = HeldInterest(rt.waits, waiter(key))
    try:
        while not stopped and body.get("metadata", {}).get("deletionTimestamp") is None:
            wake.clear()
            generation = int(body.get("metadata", {}).get("generation") or 0)
            due = time.monotonic() >= next_check
            before = (state.fingerprint, state.spec, last)
            same = verdict is not None and verdict[0] == (generation, state.fingerprint)
            known = verdict[1] if verdict is not None and same and not due else None
            outcome = await _pass(rt, key, dict(body.get("spec") or {}), state, known=known)
            if outcome.kind is not Kind.RETRYING and outcome is not known:
                # A person must act on a Stalled one, and what they change (the account, its
                # Secret) wakes the daemon; until then it looks again at the resync. (Without a
                # next check, an account that never verified passed again at once, in a loop that
                # took the event loop from every object of the operator.)
                verdict = ((generation, state.fingerprint), outcome)
                next_check = time.monotonic() + rt.settings.resync_interval
            last = (outcome.kind, outcome.reason)
            if (state.fingerprint, state.spec, last) != before:
                # New credentials, spec or verdict: every instance of the account looks again now.
                _wake_users(rt, key, users)
            if state.recovered:
                state.recovered = False
                await _retry_waiting(rt, key, users)
            written = await _write_status(rt, key, generation, outcome, written, users_of(key, users))
            if outcome.kind is Kind.RETRYING:
                delay, attempt = backoff.next_delay(outcome, attempt), attempt + 1
            else:
                delay, attempt = max(0.0, next_check - time.monotonic()), 0
            if not await interest.follow(state.secret, state.fingerprint):
                await sleep_until(delay, wake, stopped)
    finally:
        interest.close()
        rt.wakeups.unregister(waiter(key))
        if body.get("metadata", {}).get("deletionTimestamp") is None:  # the operator stops
            rt.accounts.forget(key)
        # An account being deleted stays usable until it is gone (its finalizer waits for its
        # instances, which need it to delete their remote instances): forgotten on DELETED.


async def _pass(
    rt: Runtime, key: AccountKey, raw: dict[str, Any], state: AccountState, *, known: Outcome | None
) -> Outcome:
    """The account's verdict: from its spec and Secret, then from the platform, unless `known`
    is the platform's verdict on these very credentials."""
    try:
        spec = parse_account_spec(key.kind, raw)
    except ValidationError as error:
        state.spec, state.secret = None, None
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:5])
        return outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: {problems}")
    api_url = api_url_of(spec.api_url or rt.settings.default_api_url)
    refusal = rt.hosts.refusal(api_url)
    if refusal is not None:
        state.spec, state.secret = None, None  # its instances must not call that host: no account
        return outcomes.stalled(Reason.API_HOST_NOT_ALLOWED, f"Not calling the platform: {refusal}")
    secret_ref = spec.credentials_secret_ref
    secret = (getattr(secret_ref, "namespace", None) or key.namespace, secret_ref.name)
    readable = {rt.home, *rt.settings.account_secrets_namespaces}
    if key.kind is AccountKind.CLUSTER_CONNECTOR_ACCOUNT and secret[0] not in readable:
        # The platform team decides where account secrets live; an account may not point the
        # operator at any other namespace's Secrets (its RBAC would not allow it anyway, so the
        # daemon does not watch for that Secret either: the watch would only fail and wake it).
        state.spec, state.secret = None, None
        return outcomes.stalled(
            Reason.INVALID_SPEC,
            f"Invalid spec: credentialsSecretRef.namespace {secret[0]!r} is not the operator's "
            f"namespace or one of its --account-secrets-namespaces ({', '.join(sorted(readable))})",
        )
    state.secret = secret
    gate = rt.gates.for_account(key, spec.request_budget, str(key))
    try:
        view = await rt.secrets.read(*state.secret)
    except KubeError as error:
        return classify(error, ready=False, creating=False)
    fingerprint = view.fingerprint if view is not None else None
    if fingerprint != state.fingerprint:
        known = None  # new credentials are verified at once
        if state.fingerprint is not None:
            state.changed_at = time.monotonic()
        # The two credentials only: whatever else the Secret holds is not kept for its lifetime.
        kept = {k: v for k, v in view.data.items() if k in CREDENTIAL_KEYS} if view is not None else None
        state.data, state.fingerprint = kept, fingerprint
    state.spec, state.loaded = spec, True
    found = account_secrets(state.secrets(), state.secret_label)
    if isinstance(found, Missing):
        return outcomes.retrying(Reason.WAITING_FOR_SECRET, found.message, ready=False)
    if known is not None:
        return known
    try:
        await rt.instances.find_by_tag(api_url, Credentials(*found), VERIFY_TAG, gate=gate)
    except errors.CircuitOpen as error:
        return outcomes.retrying(
            Reason.CIRCUIT_OPEN, f"The platform failed repeatedly; calls wait ({error})", ready=False,
            retry_after=error.retry_after,
        )  # fmt: skip
    except (errors.Unauthorized, errors.Forbidden) as error:
        if state.rotated_recently():
            return outcomes.retrying(
                Reason.CREDENTIALS_REJECTED,
                f"The platform refused the new account secrets (HTTP {error.status}); a rotation takes "
                "a moment to reach everyone: retrying",
                ready=False,
            )
        return classify(error, ready=False, creating=False)
    except errors.OpenConnectorsError as error:
        return classify(error, ready=False, creating=False)
    return outcomes.success(VERIFIED)


def recovered(rt: Runtime, key: object) -> None:
    """The gate's recovery hook: the platform answers this account again (its circuit closed, or a
    call succeeded after failures). The account's daemon wakes everyone waiting, deletions too."""
    if isinstance(key, AccountKey):
        state = rt.accounts.state(key)
        now = time.monotonic()
        # At most once per RECOVERY_QUIET: one object failing while others succeed must not make
        # every success wake everyone (each wake-up is a pass for every instance of the account).
        if now - state.recovered_at >= RECOVERY_QUIET:
            state.recovered, state.recovered_at = True, now
            rt.wakeups.wake(waiter(key))


async def _retry_waiting(rt: Runtime, key: AccountKey, users: Users) -> None:
    """Instances in backoff retry at once, paced by the budget; pending deletions end their delay."""
    _wake_users(rt, key, users)
    for namespace, name, deleting in users_of(key, users):
        if deleting:
            await rt.delete_retries.run_now(rt.status, (namespace, name))


def _wake_users(rt: Runtime, key: AccountKey, users: Users) -> None:
    for namespace, name, _ in users_of(key, users):
        rt.wakeups.wake((namespace, name))


def _stored(raw: Any) -> dict[str, Any]:
    try:
        status = ConnectorAccountStatus.model_validate(raw or {})
    except ValidationError:
        status = ConnectorAccountStatus()
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


STRAYS_SHOWN = 20


def _strays(found: tuple[int, ...] | None) -> dict[str, Any]:
    if found is None:
        return {}
    return {"strayInstances": len(found), "strayInstanceIDs": list(found[:STRAYS_SHOWN])}


async def _write_status(
    rt: Runtime,
    key: AccountKey,
    generation: int,
    outcome: Outcome,
    written: dict[str, Any],
    users: list[tuple[str, str, bool]],
) -> dict[str, Any]:
    """Write what changed (an idle account writes nothing but its budget and circuit as they move)."""
    previous = ConnectorAccountStatus.model_validate(written).conditions
    conditions = outcomes.conditions(outcome, generation, previous, rt.clock(), available=VERIFIED)
    gate = rt.gates.get(key)
    new: dict[str, Any] = {
        **written,
        "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        "instances": len(users),
        "usedBy": [f"{namespace}/{name}" for namespace, name, _ in users[:USED_BY_SHOWN]],
        **_strays(rt.accounts.state(key).strays),
        **(gate.snapshot().status() if gate is not None else {}),
    }
    if outcome.handled:
        new["observedGeneration"] = generation
    patch = merge_patch(written, new)
    if not patch:
        return written
    plural = ACCOUNT_PLURAL if key.kind is AccountKind.CONNECTOR_ACCOUNT else CLUSTER_ACCOUNT_PLURAL
    try:
        await rt.status.patch(key.namespace, key.name, patch, plural=plural)
    except KubeError as error:
        logger.warning("status of %s not written: HTTP %s", key, error.status)
        return written
    return new


@kopf.on.delete(*ACCOUNTS, id="delete_account")  # type: ignore[arg-type]
async def delete_account(namespace: str, name: str, account_users: Users, **_: Any) -> None:
    _refuse_while_used(AccountKey(AccountKind.CONNECTOR_ACCOUNT, namespace, name), account_users)


@kopf.on.delete(*CLUSTER_ACCOUNTS, id="delete_cluster_account")  # type: ignore[arg-type]
async def delete_cluster_account(name: str, account_users: Users, **_: Any) -> None:
    _refuse_while_used(AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", name), account_users)


def _refuse_while_used(key: AccountKey, users: Users) -> None:
    """The finalizer stays while any instance uses the account, those being deleted included: they
    still need it to delete their remote instances."""
    using = users_of(key, users)
    if using:
        shown = ", ".join(f"{namespace}/{name}" for namespace, name, _ in using[:USED_BY_SHOWN])
        raise kopf.TemporaryError(f"{key} is used by {len(using)} ConnectorInstance(s): {shown}", delay=10)
