"""`domain.accounts`: which account an instance uses, and whether it may.

Covers: own credentials (no account), `accountRef` of either kind (a namespaced account is looked
up in the instance's namespace), the default account for an instance naming neither, the spec
naming neither without a default (InvalidSpec); an account not found (AccountNotFound, waiting);
a cluster account's namespaceSelector (empty selects nothing; matchLabels and every
matchExpressions operator) and allowedConnectors (AccountNotAllowed); the account's URL, Secret and
budget in the endpoint; a trailing `/` of any of the three URLs (the instance's, the account's, the
operator's default) dropped, so that the request digest is the same with the slash or without.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.api.account import AccountKind, LabelSelector, parse_account_spec
from connector_operator.api.spec import parse_spec
from connector_operator.api.status import Reason
from connector_operator.domain.accounts import AccountKey, Endpoint, Refused, account_key, endpoint, selects
from connector_operator.domain.desired import Keyed, desired_instance
from connector_operator.engine.accounts import LOADING_GRACE, Accounts

DEFAULT_URL = "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2"
ACCOUNT_URL = "https://api.openconnectors.eu10.ext.hana.ondemand.com/elements/api-v2"
CLUSTER = AccountKind.CLUSTER_CONNECTOR_ACCOUNT
NAMESPACED = AccountKind.CONNECTOR_ACCOUNT


def instance(**fields: Any) -> Any:
    return parse_spec({"connectorKey": "closeio", **fields})


def cluster_account(**fields: Any) -> Any:
    raw = {
        "apiURL": ACCOUNT_URL,
        "credentialsSecretRef": {"name": "crm-account", "namespace": "oc-system"},
        "namespaceSelector": {"matchLabels": {"team": "crm"}},
        "requestBudget": {"requestsPerSecond": 5, "burst": 10, "maxInFlight": 4},
        **fields,
    }
    return parse_account_spec("ClusterConnectorAccount", raw)


def test_own_credentials_need_no_account() -> None:
    spec = instance(credentialsSecretRef={"name": "mine"})
    assert account_key(spec, "team-a", "shared") is None
    assert endpoint(
        spec, "team-a", key=None, account=None, namespace_labels=None, default_api_url=DEFAULT_URL
    ) == (Endpoint(DEFAULT_URL, "team-a", "mine", None))


def test_account_refs_and_the_default_account() -> None:
    cluster = instance(accountRef={"kind": "ClusterConnectorAccount", "name": "shared"})
    namespaced = instance(accountRef={"kind": "ConnectorAccount", "name": "local"})
    assert account_key(cluster, "team-a", None) == AccountKey(CLUSTER, "", "shared")
    assert account_key(namespaced, "team-a", "default") == AccountKey(NAMESPACED, "team-a", "local")
    assert account_key(instance(), "team-a", "fallback") == AccountKey(CLUSTER, "", "fallback")
    assert account_key(instance(), "team-a", None) is None


def test_naming_nothing_without_a_default_account_is_an_invalid_spec() -> None:
    result = endpoint(
        instance(), "team-a", key=None, account=None, namespace_labels={}, default_api_url=DEFAULT_URL
    )
    assert isinstance(result, Refused)
    assert result.reason is Reason.INVALID_SPEC
    assert "--default-account" in result.message


def test_an_account_not_found_waits() -> None:
    key = AccountKey(CLUSTER, "", "shared")
    result = endpoint(
        instance(), "team-a", key=key, account=None, namespace_labels={}, default_api_url=DEFAULT_URL
    )
    assert result == Refused(Reason.ACCOUNT_NOT_FOUND, "ClusterConnectorAccount shared does not exist")
    assert result.waiting


def test_a_cluster_account_serves_the_namespaces_it_selects() -> None:
    key = AccountKey(CLUSTER, "", "shared")
    account = cluster_account()
    allowed = endpoint(
        instance(),
        "crm",
        key=key,
        account=account,
        namespace_labels={"team": "crm"},
        default_api_url=DEFAULT_URL,
    )
    assert allowed == Endpoint(ACCOUNT_URL, "oc-system", "crm-account", key, account.request_budget)
    refused = endpoint(
        instance(),
        "ads",
        key=key,
        account=account,
        namespace_labels={"team": "ads"},
        default_api_url=DEFAULT_URL,
    )
    assert isinstance(refused, Refused)
    assert refused.reason is Reason.ACCOUNT_NOT_ALLOWED
    assert not refused.waiting
    assert "namespaceSelector" in refused.message


def test_allowed_connectors_and_unreadable_labels_refuse() -> None:
    key = AccountKey(CLUSTER, "", "shared")
    only_hubspot = cluster_account(allowedConnectors=["hubspot"])
    refused = endpoint(
        instance(), "crm", key=key, account=only_hubspot, namespace_labels={"team": "crm"}, default_api_url=""
    )
    assert isinstance(refused, Refused)
    assert "allowedConnectors" in refused.message
    unknown = endpoint(
        instance(), "crm", key=key, account=cluster_account(), namespace_labels=None, default_api_url=""
    )
    assert isinstance(unknown, Refused)
    assert unknown.reason is Reason.ACCOUNT_NOT_ALLOWED


def test_a_namespaced_account_reads_its_secret_in_its_namespace() -> None:
    key = AccountKey(NAMESPACED, "team-a", "local")
    account = parse_account_spec("ConnectorAccount", {"credentialsSecretRef": {"name": "acct"}})
    result = endpoint(
        instance(), "team-a", key=key, account=account, namespace_labels=None, default_api_url=DEFAULT_URL
    )
    assert result == Endpoint(DEFAULT_URL, "team-a", "acct", key, None)


def test_a_trailing_slash_of_any_api_url_is_dropped_and_changes_no_digest() -> None:
    """Issue 18: users paste `.../elements/api-v2/`. The endpoint's URL (which reaches the status,
    the token Secret, the request digest and the calls) is the same with the slash or without, so
    adding it costs no PUT."""
    own = instance(credentialsSecretRef={"name": "mine"}, apiURL=ACCOUNT_URL + "/")
    located = endpoint(
        own, "team-a", key=None, account=None, namespace_labels=None, default_api_url=DEFAULT_URL
    )
    assert located == Endpoint(ACCOUNT_URL, "team-a", "mine", None)
    by_default = endpoint(
        instance(credentialsSecretRef={"name": "mine"}),
        "team-a",
        key=None,
        account=None,
        namespace_labels=None,
        default_api_url=DEFAULT_URL + "/",
    )
    assert isinstance(by_default, Endpoint)
    assert by_default.api_url == DEFAULT_URL
    key = AccountKey(CLUSTER, "", "shared")
    account = cluster_account(apiURL=ACCOUNT_URL + "/")
    via_account = endpoint(
        instance(), "crm", key=key, account=account, namespace_labels={"team": "crm"}, default_api_url=""
    )
    assert via_account == Endpoint(ACCOUNT_URL, "oc-system", "crm-account", key, account.request_budget)
    local = parse_account_spec(
        "ConnectorAccount", {"apiURL": ACCOUNT_URL + "/", "credentialsSecretRef": {"name": "a"}}
    )
    via_local = endpoint(
        instance(),
        "team-a",
        key=AccountKey(NAMESPACED, "team-a", "local"),
        account=local,
        namespace_labels=None,
        default_api_url=DEFAULT_URL,
    )
    assert isinstance(via_local, Endpoint)
    assert via_local.api_url == ACCOUNT_URL

    uid = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
    keyed = Keyed(b"k" * 32, uid)

    def digest(api_url: str) -> str:
        spec = instance(credentialsSecretRef={"name": "mine"}, apiURL=api_url)
        located = endpoint(
            spec, "team-a", key=None, account=None, namespace_labels=None, default_api_url=DEFAULT_URL
        )
        assert isinstance(located, Endpoint)
        wanted = desired_instance(spec, namespace="team-a", name="crm", uid=uid, configuration={})
        return wanted.digest(keyed, located.api_url)

    assert digest(ACCOUNT_URL + "/") == digest(ACCOUNT_URL)


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        (None, {"team": "crm"}, False),
        ({}, {"team": "crm"}, False),
        ({"matchLabels": {"team": "crm"}}, {"team": "crm", "x": "y"}, True),
        ({"matchLabels": {"team": "crm"}}, {"team": "ads"}, False),
        (
            {"matchExpressions": [{"key": "team", "operator": "In", "values": ["crm", "ads"]}]},
            {"team": "ads"},
            True,
        ),
        ({"matchExpressions": [{"key": "team", "operator": "In", "values": ["crm"]}]}, {}, False),
        ({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["crm"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["crm"]}]},
            {"team": "crm"},
            False,
        ),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
        (
            {
                "matchLabels": {"team": "crm"},
                "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}],
            },
            {"team": "crm", "tier": "prod"},
            False,
        ),
    ],
)
def test_label_selectors(selector: dict[str, Any] | None, labels: dict[str, str], selected: bool) -> None:
    parsed = LabelSelector.model_validate(selector) if selector is not None else None
    assert selects(parsed, labels) is selected


def test_an_account_listed_at_the_start_is_loading_until_loaded_forgotten_or_the_grace_ends() -> None:
    key = AccountKey(AccountKind.CLUSTER_CONNECTOR_ACCOUNT, "", "shared")
    other = AccountKey(AccountKind.CONNECTOR_ACCOUNT, "sales", "team")
    accounts = Accounts()
    assert not accounts.loading(key)  # nothing listed (the test tiers): judged as before
    accounts.listed, accounts.listed_at = frozenset({key, other}), 100.0
    assert accounts.loading(key, now=101.0)
    assert not accounts.loading(AccountKey(AccountKind.CONNECTOR_ACCOUNT, "sales", "absent"), now=101.0)
    assert not accounts.loading(key, now=100.0 + LOADING_GRACE)
    state = accounts.state(key)
    state.loaded = True
    assert accounts.loading(key, now=101.0)  # loaded, but no spec yet
    state.spec = object()  # type: ignore[assignment]
    assert not accounts.loading(key, now=101.0)
    accounts.forget(other)
    assert not accounts.loading(other, now=101.0)
