"""The passes of one ConnectorAccount or ClusterConnectorAccount: its loop (`serve`, run by a kopf
daemon in handlers/accounts.py), its verdict (`account_pass`) and its status.

The loop owns the account's credentials: it reads the Secret, verifies the secrets with one
cheap authenticated call (a search for a tag nobody carries: 200 or 404 means "accepted"), keeps
them in `runtime.accounts` for the instances, and wakes every instance of the account when they
change, so a rotation reaches them all within seconds. The Secret's changes reach the loop
through the shared Secret watch (engine/secretwaits.py), whatever namespace it lives in.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Collection, Mapping
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from connector_operator.api.account import (
    AccountKind,
    ClusterConnectorAccountSpec,
    ConnectorAccountStatus,
    parse_account_spec,
)
from connector_operator.api.meta import Meta
from connector_operator.api.names import CREDENTIAL_KEYS
from connector_operator.api.status import Reason
from connector_operator.api.validation import describe
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.accounts import AccountKey, AccountSpec, api_url_of, serves
from connector_operator.domain.inputs import Missing, account_secrets
from connector_operator.domain.outcome import Kind, Outcome
from connector_operator.domain.transition import merge_patch
from connector_operator.engine.accounts import AccountState, waiter
from connector_operator.engine.secretwaits import HeldInterest
from connector_operator.engine.wakeups import Key, sleep_until
from connector_operator.kube.api import KubeError
from connector_operator.kube.secrets import SecretView
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials
from connector_operator.reconciler.outcomes import classify
from connector_operator.reconciler.runtime import Runtime

logger = logging.getLogger(__name__)

VERIFY_TAG = "k8s-account-check"  # carried by no instance: the search proves the secrets, nothing else
VERIFIED = "The account secrets were verified with the platform"
USED_BY_SHOWN = 10
RECOVERY_QUIET = 10.0  # seconds between two "everyone retry now" of one account
# Objects a recovery wakes at most: with RECOVERY_QUIET, at most 20 passes a second per account.
RECOVERY_WAKES = 200


class User(NamedTuple):
    """A ConnectorInstance naming an account, as kopf's `account_users` index keeps it."""

    namespace: str
    name: str
    deleting: bool
    connector: str = ""
    # Its status.account names this account: its remote instance was made through it.
    bound: bool = False


# kopf's `account_users` index: account -> the ConnectorInstances naming it.
Users = Mapping[AccountKey, Collection[User]]


def users_of(key: AccountKey, index: Users) -> list[User]:
    """Every object naming the account (all are woken when it changes: it may serve them now)."""
    return sorted(index.get(key, []))


async def served(rt: Runtime, key: AccountKey, index: Users) -> list[User]:
    """The users the account counts (status `instances` and `usedBy`, and what holds its deletion):
    those it serves, and those whose remote instance was made through it. A tenant naming a cluster
    account from a namespace it does not select neither shows in its status nor blocks its deletion
    (tenant-findings N11). An account whose spec is not read yet counts everyone, to be safe."""
    users = users_of(key, index)
    state = rt.accounts.states.get(key)
    spec = state.spec if state is not None else None
    if not isinstance(spec, ClusterConnectorAccountSpec) or rt.namespaces is None:
        return users  # a ConnectorAccount serves its own namespace only
    kept = []
    for user in users:
        if user.bound or serves(spec, user.connector, await rt.namespaces.labels(user.namespace)):
            kept.append(user)
    return kept


class Stopped(Protocol):
    """kopf's `DaemonStopped`, as the loop uses it: true once asked to stop, and awaitable."""

    def __bool__(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


async def serve(
    rt: Runtime, key: AccountKey, body: Mapping[str, Any], stopped: Stopped, users: Users
) -> None:
    """An account's loop, for as long as the account exists and the operator runs: a pass after
    each change and at the resync, its status written after each."""
    wake = rt.wakeups.register(waiter(key))
    state = rt.accounts.state(key)
    written = _stored(body.get("status"))
    # The last verdict (Ready, or Stalled) on a (generation, credentials fingerprint): repeated
    # without a platform call until either changes or the resync is due.
    verdict: tuple[tuple[int, str | None], Outcome] | None = None
    next_check = 0.0
    last: tuple[Kind, Reason] | None = None
    interest = HeldInterest(rt.waits, waiter(key))
    try:
        while not stopped and not Meta.of(body).deleting:
            wake.clear()
            generation = Meta.of(body).generation
            due = time.monotonic() >= next_check
            before = (state.fingerprint, state.spec, last)
            same = verdict is not None and verdict[0] == (generation, state.fingerprint)
            known = verdict[1] if verdict is not None and same and not due else None
            outcome = await account_pass(rt, key, dict(body.get("spec") or {}), state, known=known)
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
                wake_users(rt, key, users)
            if state.recovered:
                state.recovered = False
                await _retry_waiting(rt, key, users)
            written = await _write_status(rt, key, generation, outcome, written, await served(rt, key, users))
            if outcome.kind is Kind.RETRYING:
                delay = rt.retries.failed(key, outcome)  # a wait the platform asked for is no failure
            else:
                rt.retries.succeeded(key)
                delay = max(0.0, next_check - time.monotonic())
            if not await interest.follow(state.secret, state.fingerprint):
                await sleep_until(delay, wake, stopped)
    finally:
        interest.close()
        rt.wakeups.unregister(waiter(key))
        rt.retries.succeeded(key)
        if not Meta.of(body).deleting:  # the operator stops
            rt.accounts.forget(key)
        # An account being deleted stays usable until it is gone (its finalizer waits for its
        # instances, which need it to delete their remote instances): forgotten on DELETED.


async def account_pass(
    rt: Runtime, key: AccountKey, raw: dict[str, Any], state: AccountState, *, known: Outcome | None
) -> Outcome:
    """The account's verdict: from its spec and Secret, then from the platform, unless `known`
    is the platform's verdict on these very credentials."""
    admitted = _admit(rt, key, raw, state)
    if isinstance(admitted, Outcome):
        state.spec, state.secret = None, None  # its instances must not use the account: no account
        return admitted
    spec, api_url, state.secret = admitted
    gate = rt.gate(key, spec.request_budget)
    try:
        view = await rt.secrets.read(*state.secret)
    except KubeError as error:
        return classify(error, ready=False, creating=False, backoff=rt.backoff)
    if _read(state, view):
        known = None  # new credentials are verified at once
    state.spec, state.loaded = spec, True
    found = account_secrets(state.secrets(), state.secret_label)
    if isinstance(found, Missing):
        return outcomes.retrying(Reason.WAITING_FOR_SECRET, found.message, ready=False)
    if known is not None:
        return known
    return await _verify(rt, state, api_url, Credentials(*found), gate, key)


def _admit(
    rt: Runtime, key: AccountKey, raw: dict[str, Any], state: AccountState
) -> tuple[AccountSpec, str, Key] | Outcome:
    """The spec, the URL and the credentials Secret, or why the account cannot be used."""
    try:
        spec = parse_account_spec(key.kind, raw)
    except ValidationError as error:
        return outcomes.stalled(Reason.INVALID_SPEC, f"Invalid spec: {describe(error)}")
    api_url = api_url_of(spec.api_url or rt.settings.default_api_url)
    refusal = rt.hosts.refusal(api_url)
    if refusal is not None:
        return outcomes.stalled(Reason.API_HOST_NOT_ALLOWED, f"Not calling the platform: {refusal}")
    secret_ref = spec.credentials_secret_ref
    secret = (getattr(secret_ref, "namespace", None) or key.namespace, secret_ref.name)
    readable = {rt.home, *rt.settings.account_secrets_namespaces}
    if key.kind is AccountKind.CLUSTER_CONNECTOR_ACCOUNT and secret[0] not in readable:
        # The platform team decides where account secrets live; an account may not point the
        # operator at any other namespace's Secrets (its RBAC would not allow it anyway, so the
        # loop does not watch for that Secret either: the watch would only fail and wake it).
        return outcomes.stalled(
            Reason.INVALID_SPEC,
            f"Invalid spec: credentialsSecretRef.namespace {secret[0]!r} is not the operator's "
            f"namespace or one of its --account-secrets-namespaces ({', '.join(sorted(readable))})",
        )
    return spec, api_url, secret


def _read(state: AccountState, view: SecretView | None) -> bool:
    """Keep the credentials the Secret holds now; whether they changed."""
    fingerprint = view.fingerprint if view is not None else None
    if fingerprint == state.fingerprint:
        return False
    if state.fingerprint is not None:
        state.changed_at = time.monotonic()
    # The two credentials only: whatever else the Secret holds is not kept for its lifetime.
    kept = {k: v for k, v in view.data.items() if k in CREDENTIAL_KEYS} if view is not None else None
    state.data, state.fingerprint = kept, fingerprint
    return True


async def _verify(
    rt: Runtime,
    state: AccountState,
    api_url: str,
    credentials: Credentials,
    gate: AccountGate,
    key: AccountKey,
) -> Outcome:
    """The platform's verdict on the credentials: one search for a tag nobody carries. A namespaced
    account's check is its namespace's call (its slots, its turn: tenant-findings N4), a cluster
    account's the operator's own."""
    try:
        namespace = key.namespace or None
        await rt.instances.find_by_tag(api_url, credentials, VERIFY_TAG, gate=gate, namespace=namespace)
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
        return classify(error, ready=False, creating=False, backoff=rt.backoff)
    except errors.OpenConnectorsError as error:
        return classify(error, ready=False, creating=False, backoff=rt.backoff)
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
    """Instances waiting to retry (in backoff, or told to wait by the circuit or the budget) retry
    at once, and pending deletions end their delay: at most `RECOVERY_WAKES` of them, taken from
    the namespaces in turn (within one, the most failed first). Every instance of the account was
    woken before, so one tenant who made the account fail and recover every `RECOVERY_QUIET` made
    thousands of passes each time (tenant-findings N6); the rest retry on their own backoff,
    which is capped."""
    by_namespace: dict[str, list[User]] = {}
    for user in users_of(key, users):
        if user.deleting or rt.retries.waiting((user.namespace, user.name)):
            by_namespace.setdefault(user.namespace, []).append(user)
    for waiting in by_namespace.values():
        waiting.sort(key=lambda user: -rt.retries.attempts((user.namespace, user.name)))
    in_turn = (user for round_ in itertools.zip_longest(*by_namespace.values()) for user in round_ if user)
    for user in itertools.islice(in_turn, RECOVERY_WAKES):
        if user.deleting:
            await rt.delete_retries.run_now(rt.status, (user.namespace, user.name))
        else:
            rt.wakeups.wake((user.namespace, user.name))


def wake_users(rt: Runtime, key: AccountKey, users: Users) -> None:
    for user in users_of(key, users):
        rt.wakeups.wake((user.namespace, user.name))


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
    users: list[User],
) -> dict[str, Any]:
    """Write what changed (an idle account writes nothing but its budget and circuit as they move)."""
    previous = ConnectorAccountStatus.model_validate(written).conditions
    conditions = outcomes.conditions(outcome, generation, previous, rt.clock(), available=VERIFIED)
    gate = rt.gates.get(key)
    new: dict[str, Any] = {
        **written,
        "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        "instances": len(users),
        "usedBy": [f"{user.namespace}/{user.name}" for user in users[:USED_BY_SHOWN]],
        **_strays(rt.accounts.state(key).strays),
        **(gate.snapshot().status() if gate is not None else {}),
    }
    if outcome.handled:
        new["observedGeneration"] = generation
    patch = merge_patch(written, new)
    if not patch:
        return written
    try:
        await rt.status.patch(key.namespace, key.name, patch, plural=key.plural)
    except KubeError as error:
        logger.warning("status of %s not written: HTTP %s", key, error.status)
        return written
    return new
