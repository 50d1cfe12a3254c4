"""Which account a ConnectorInstance uses, and whether it may: pure decisions over specs and labels.

An instance either carries its own credentials (`credentialsSecretRef`, optionally `apiURL`) or
names an account (`accountRef`), or names neither and gets the operator's `--default-account`.
From that comes one `Endpoint`: the platform URL (without the trailing `/` a spec may give it:
`api_url_of`), the Secret that holds the account secrets, and the account whose request budget and
circuit breaker every call goes through. A cluster account serves only namespaces its
`namespaceSelector` selects (an empty selector selects none: the platform team opts namespaces in,
never out) and, if it lists them, only `allowedConnectors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connector_operator.api.account import (
    AccountKind,
    ClusterConnectorAccountSpec,
    ConnectorAccountSpec,
    LabelSelector,
    RequestBudget,
    SelectorOperator,
)
from connector_operator.api.names import ACCOUNT_PLURAL, CLUSTER_ACCOUNT_PLURAL
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.api.status import Reason

AccountSpec = ConnectorAccountSpec | ClusterConnectorAccountSpec


@dataclass(frozen=True, order=True)
class AccountKey:
    kind: AccountKind
    namespace: str  # "" for a ClusterConnectorAccount
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    @property
    def status_name(self) -> str:
        """How status.account names it (`ClusterConnectorAccount/shared`)."""
        return f"{self.kind.value}/{self.name}"

    @property
    def plural(self) -> str:
        """The account's resource in API paths."""
        return ACCOUNT_PLURAL if self.kind is AccountKind.CONNECTOR_ACCOUNT else CLUSTER_ACCOUNT_PLURAL


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom the calls for one instance go."""

    api_url: str
    secret_namespace: str
    secret_name: str
    account: AccountKey | None  # None: the instance's own credentialsSecretRef
    budget: RequestBudget | None = None


@dataclass(frozen=True)
class Refused:
    """The instance may not (yet) use an account. `AccountNotFound` waits for the account to
    appear; `AccountNotAllowed` and `InvalidSpec` wait for a change of spec, account or namespace."""

    reason: Reason
    message: str

    @property
    def waiting(self) -> bool:
        return self.reason is Reason.ACCOUNT_NOT_FOUND


def account_key(
    spec: ConnectorInstanceSpec, namespace: str, default_account: str | None
) -> AccountKey | None:
    """The account an instance uses; None when it carries its own credentials (or has nothing)."""
    if spec.account_ref is not None:
        ref = spec.account_ref
        scoped = namespace if ref.kind is AccountKind.CONNECTOR_ACCOUNT else ""
        return AccountKey(ref.kind, scoped, ref.name)
    if spec.credentials_secret_ref is None and default_account:
        return AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", default_account)
    return None


def endpoint(
    spec: ConnectorInstanceSpec,
    namespace: str,
    *,
    key: AccountKey | None,
    account: AccountSpec | None,
    namespace_labels: Mapping[str, str] | None,
    default_api_url: str,
) -> Endpoint | Refused:
    """The endpoint of an instance, given the account `key` names (None if not found) and the labels
    of the instance's namespace (None if they could not be read)."""
    if key is None:
        if spec.credentials_secret_ref is None:
            return Refused(
                Reason.INVALID_SPEC,
                "Invalid spec: name an account (spec.accountRef) or a credentials Secret "
                "(spec.credentialsSecretRef); this operator has no --default-account",
            )
        return Endpoint(
            api_url_of(spec.api_url or default_api_url), namespace, spec.credentials_secret_ref.name, None
        )
    if account is None:
        return Refused(Reason.ACCOUNT_NOT_FOUND, f"{key} does not exist")
    if isinstance(account, ClusterConnectorAccountSpec):
        refusal = _cluster_refusal(key, account, spec.connector_key, namespace, namespace_labels)
        if refusal is not None:
            return refusal
        secret_namespace = account.credentials_secret_ref.namespace
    else:
        secret_namespace = namespace
    return Endpoint(
        api_url_of(account.api_url or default_api_url),
        secret_namespace,
        account.credentials_secret_ref.name,
        key,
        account.request_budget,
    )


def api_url_of(url: str) -> str:
    """A platform API URL as the operator uses it: without trailing slashes (the CRD allows one, as
    users paste it), so that the status, the token Secret, the request digest and the calls see one
    form, with the slash or without."""
    return url.rstrip("/")


def feature_refusal(spec: ConnectorInstanceSpec, key: AccountKey, account: AccountSpec) -> Refused | None:
    """Day-2 features an account must allow, because they give a tenant more than the use of its
    secrets: an instance the account has (adoption, observation), or the secrets themselves."""
    if spec.instance_id is not None and not account.allow_adoption:
        return Refused(
            Reason.ACCOUNT_NOT_ALLOWED,
            f"{key} does not allow adopting or observing existing instances (spec.instanceID): its "
            "owner may set allowAdoption",
        )
    template = spec.token_secret.template if spec.token_secret else None
    if template is not None and template.include_account_secrets and not account.allow_secret_export:
        return Refused(
            Reason.ACCOUNT_NOT_ALLOWED,
            f"{key} does not allow its secrets in token Secrets (includeAccountSecrets): its owner may "
            "set allowSecretExport",
        )
    return None


def _cluster_refusal(
    key: AccountKey,
    account: ClusterConnectorAccountSpec,
    connector: str,
    namespace: str,
    labels: Mapping[str, str] | None,
) -> Refused | None:
    if labels is None:
        return Refused(
            Reason.ACCOUNT_NOT_ALLOWED,
            f"{key}: the labels of namespace {namespace!r} could not be read to check its namespaceSelector",
        )
    if not selects(account.namespace_selector, labels):
        return Refused(
            Reason.ACCOUNT_NOT_ALLOWED,
            f"{key} does not serve namespace {namespace!r}: its namespaceSelector does not select it",
        )
    if account.allowed_connectors is not None and connector not in account.allowed_connectors:
        return Refused(
            Reason.ACCOUNT_NOT_ALLOWED,
            f"{key} does not allow connector {connector!r} (allowedConnectors)",
        )
    return None


def serves(account: ClusterConnectorAccountSpec, connector: str, labels: Mapping[str, str] | None) -> bool:
    """Whether the cluster account serves an instance of `connector` in a namespace with `labels`
    (None: not readable, so not served), as `endpoint` decides for the instance itself."""
    return (
        labels is not None
        and selects(account.namespace_selector, labels)
        and (account.allowed_connectors is None or connector in account.allowed_connectors)
    )


def selects(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics, except that an absent or empty selector selects nothing."""
    if selector is None or not (selector.match_labels or selector.match_expressions):
        return False
    if any(labels.get(k) != v for k, v in (selector.match_labels or {}).items()):
        return False
    for requirement in selector.match_expressions or []:
        present, value, values = (
            requirement.key in labels,
            labels.get(requirement.key),
            requirement.values or [],
        )
        match requirement.operator:
            case SelectorOperator.IN if not (present and value in values):
                return False
            case SelectorOperator.NOT_IN if present and value in values:
                return False
            case SelectorOperator.EXISTS if not present:
                return False
            case SelectorOperator.DOES_NOT_EXIST if present:
                return False
    return True
