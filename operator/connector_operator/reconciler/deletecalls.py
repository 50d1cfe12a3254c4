"""What a deletion needs from the accounts and the platform: the credentials to delete with
(`account_secrets_of`: `Absent` when they are gone, `Unloaded` when this process has not read
them yet), and which instances are the object's (`owned` by a search, `proven` by a GET, or
`remembered` from the passes). Apart from `deletion`, which owns the handler's flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connector_operator.api.names import GROUP, VERSION
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.api.status import Reason
from connector_operator.domain.accounts import AccountKey, Endpoint, Refused, account_key
from connector_operator.domain.inputs import Missing, account_secrets
from connector_operator.domain.ownership import Identity
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials, Instance
from connector_operator.reconciler.locate import locate
from connector_operator.reconciler.runtime import Key, Runtime


async def endpoint_url(runtime: Runtime, spec: ConnectorInstanceSpec, namespace: str) -> str:
    located, _ = await locate(runtime, spec, namespace)
    return located.api_url if isinstance(located, Endpoint) else runtime.settings.default_api_url


async def owned(
    runtime: Runtime, api_url: str, credentials: Credentials, gate: AccountGate | None, identity: Identity
) -> dict[int, Instance]:
    """The instances carrying the object's identity tag, or its claim (searched by each)."""
    found: dict[int, Instance] = {}
    namespace = identity.namespace
    for tag in filter(None, (identity.uid_tag, identity.claim)):
        for instance in await runtime.instances.find_by_tag(
            api_url, credentials, tag, gate=gate, namespace=namespace
        ):
            if identity.owns(instance.tags) and not identity.foreign(instance.tags):
                found[instance.id] = instance
    return found


async def proven(
    runtime: Runtime,
    api_url: str,
    credentials: Credentials,
    gate: AccountGate | None,
    identity: Identity,
    instance_id: int,
) -> bool:
    """Whether the instance exists and carries the object's identity (a GET)."""
    try:
        instance = await runtime.instances.get(
            api_url, credentials, instance_id, gate=gate, namespace=identity.namespace
        )
    except errors.NotFound:
        return False
    return identity.owns(instance.tags) and not identity.foreign(instance.tags)


def remembered(runtime: Runtime, key: Key, uid: str) -> Instance | None:
    """The instance the passes proved this object's, with its tags as last seen: no search needed."""
    tracked = runtime.tracked.get(key)
    if tracked is None or tracked.uid != uid or runtime.scheduler.running(key):
        return None
    state = tracked.thaw()
    try:
        instance = state.instance
        return instance if instance is not None and state.verified == instance.id else None
    finally:
        tracked.park()


@dataclass(frozen=True)
class Absent:
    what: str  # "Secret 'x' does not exist", or the account's


@dataclass(frozen=True)
class Unloaded:
    what: str  # the account exists, but this process has not read it (or its Secret) yet


async def account_secrets_of(
    runtime: Runtime,
    spec: ConnectorInstanceSpec,
    namespace: str,
    cache: Mapping[Key, SecretMeta],
) -> tuple[Credentials, AccountGate | None] | Missing | Refused | Absent | Unloaded:
    """The credentials to delete with (and the account's gate); `Absent` when their Secret, or the
    account, does not exist; otherwise what is wrong. Configuration Secrets are not needed."""
    located, account = await locate(runtime, spec, namespace)
    if isinstance(located, Refused):
        if located.reason is not Reason.ACCOUNT_NOT_FOUND:
            return located
        key = account_key(spec, namespace, runtime.settings.default_account)
        if key is not None and await account_exists(runtime, key):
            return Unloaded(f"{key} is not loaded yet")
        return Absent(located.message)
    if account is not None and located.account is not None:
        if not account.loaded:
            return Unloaded(f"{located.account}: its Secret is not read yet")
        if account.data is None:
            # Not held by our finalizer (the account daemon reads it): its absence proves nothing.
            return Missing(f"Secret {account.secret_label!r} ({located.account}) does not exist", "")
        found = account_secrets(account.secrets(), account.secret_label)
        gate = runtime.gate(located.account, located.budget)
    else:
        view = await runtime.read_secret(cache, namespace, located.secret_name)
        if view is None:
            return Absent(f"Secret {located.secret_name!r} does not exist")
        found = account_secrets({located.secret_name: view.data}, located.secret_name)
        gate = None
    return (Credentials(*found), gate) if isinstance(found, tuple) else found


async def account_exists(runtime: Runtime, key: AccountKey) -> bool:
    """Whether the API server has the account (a fresh process may not have loaded it yet)."""
    if runtime.kube is None:
        return True  # cannot tell: assume it does, and wait
    plural = key.plural
    scope = f"namespaces/{key.namespace}/" if key.namespace else ""
    return (
        await runtime.kube.request("GET", f"/apis/{GROUP}/{VERSION}/{scope}{plural}/{key.name}") is not None
    )
