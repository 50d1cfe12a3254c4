"""Where an object's calls go and as whom: its own Secret, or its account (a pass and a deletion ask
alike, so that a delete goes where the create went)."""

from __future__ import annotations

from connector_operator.api.account import AccountKind
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.domain.accounts import Endpoint, Refused, account_key, endpoint
from connector_operator.engine.accounts import AccountState
from connector_operator.reconciler.runtime import Runtime


async def locate(
    rt: Runtime, spec: ConnectorInstanceSpec, namespace: str
) -> tuple[Endpoint | Refused, AccountState | None]:
    """Where the object's calls go and as whom: its own Secret, or its account (with the account's
    state as the account's daemon keeps it: spec and credentials)."""
    key = account_key(spec, namespace, rt.settings.default_account)
    account = rt.accounts.states.get(key) if key is not None else None
    labels = None
    if key is not None and key.kind is AccountKind.CLUSTER_CONNECTOR_ACCOUNT and rt.namespaces is not None:
        labels = await rt.namespaces.labels(namespace)
    located = endpoint(
        spec,
        namespace,
        key=key,
        account=account.spec if account is not None else None,
        namespace_labels=labels,
        default_api_url=rt.settings.default_api_url,
    )
    return located, account if isinstance(located, Endpoint) and located.account is not None else None
