"""`domain.inputs`: turning a spec's Secret references into values, or saying what is missing.

Covers `api.spec.referenced_secrets()` (the account Secret plus every configuration Secret, once each) and
`resolve()`: with everything present it merges literal and Secret-sourced configuration values
and returns the account secrets; a missing account Secret, a missing key, an empty or blank value
and a missing configuration Secret each give `Missing`, naming the Secret (and key) concerned, as
do a value that is not UTF-8 text and account secrets no HTTP header can carry; a configuration
too large to send gives `TooLarge` before any request is built.
No secret value ever appears in a `Missing` message or in the repr of either result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from connector_operator.api.spec import ConnectorInstanceSpec, parse_spec, referenced_secrets
from connector_operator.domain.inputs import (
    MAX_CONFIGURATION_BYTES,
    MAX_VALUE_BYTES,
    Missing,
    Resolved,
    TooLarge,
    resolve,
)

USER_SECRET = "user-s3cret-Value-1"
ORGANIZATION_SECRET = "org-s3cret-Value-2"
API_KEY = "closeio-Api-Key-3"
OTHER_VALUE = "unrelated-Value-4"
VALUES = (USER_SECRET, ORGANIZATION_SECRET, API_KEY, OTHER_VALUE)


def make_spec(**overrides: Any) -> ConnectorInstanceSpec:
    raw: dict[str, Any] = {
        "connectorKey": "closeio",
        "credentialsSecretRef": {"name": "account"},
        "configuration": [
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}},
            {"key": "pagination.max", "value": "50"},
        ],
    }
    raw.update(overrides)
    return parse_spec(raw)


def all_secrets() -> dict[str, dict[str, str] | None]:
    return {
        "account": {"userSecret": USER_SECRET, "organizationSecret": ORGANIZATION_SECRET},
        "closeio-api": {"apiKey": API_KEY, "other": OTHER_VALUE},
    }


def assert_no_values(text: str) -> None:
    for value in VALUES:
        assert value not in text


def test_referenced_secrets_are_the_account_and_every_configuration_secret() -> None:
    assert referenced_secrets(make_spec()) == frozenset({"account", "closeio-api"})


def test_referenced_secrets_without_configuration_is_the_account_only() -> None:
    assert referenced_secrets(make_spec(configuration=None)) == frozenset({"account"})


def test_referenced_secrets_ignore_literals_and_name_each_secret_once() -> None:
    spec = make_spec(
        configuration=[
            {"key": "a", "valueFrom": {"secretKeyRef": {"name": "shared", "key": "one"}}},
            {"key": "b", "valueFrom": {"secretKeyRef": {"name": "shared", "key": "two"}}},
            {"key": "c", "valueFrom": {"secretKeyRef": {"name": "account", "key": "three"}}},
            {"key": "d", "value": "literal-name-lookalike"},
        ]
    )
    assert referenced_secrets(spec) == frozenset({"account", "shared"})


def test_an_account_s_secret_is_not_among_the_namespace_s_referenced_secrets() -> None:
    # Issue 10: with accountRef (or the default account) the credentials are the account's.
    by_account = make_spec(credentialsSecretRef=None, accountRef={"kind": "ConnectorAccount", "name": "team"})
    assert referenced_secrets(by_account) == frozenset({"closeio-api"})
    assert referenced_secrets(make_spec(credentialsSecretRef=None)) == frozenset({"closeio-api"})


def test_the_credentials_are_read_from_the_key_the_caller_names() -> None:
    # An account's Secret from another namespace, keyed so that no Secret of this one can shadow it.
    secrets = {**all_secrets(), "ops/platform": all_secrets()["account"], "account": None}
    result = resolve(make_spec(credentialsSecretRef=None), secrets, "ops/platform")
    assert isinstance(result, Resolved)
    assert (result.user_secret, result.organization_secret) == (USER_SECRET, ORGANIZATION_SECRET)
    missing = resolve(make_spec(credentialsSecretRef=None), all_secrets(), "ops/platform")
    assert isinstance(missing, Missing)
    assert missing.secret_name == "ops/platform"


def test_all_present_resolves_credentials_and_merged_configuration() -> None:
    result = resolve(make_spec(), all_secrets(), "account")
    assert isinstance(result, Resolved)
    assert result.user_secret == USER_SECRET
    assert result.organization_secret == ORGANIZATION_SECRET
    assert dict(result.configuration) == {"username": API_KEY, "pagination.max": "50"}


def test_one_secret_can_hold_both_credentials_and_configuration() -> None:
    spec = make_spec(
        configuration=[
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": "account", "key": "apiKey"}}}
        ]
    )
    secrets = {
        "account": {"userSecret": USER_SECRET, "organizationSecret": ORGANIZATION_SECRET, "apiKey": API_KEY}
    }
    result = resolve(spec, secrets, "account")
    assert isinstance(result, Resolved)
    assert dict(result.configuration) == {"username": API_KEY}


def test_account_secrets_are_trimmed_of_surrounding_whitespace() -> None:
    secrets = all_secrets()
    secrets["account"] = {
        "userSecret": f"  {USER_SECRET}\n",
        "organizationSecret": f"{ORGANIZATION_SECRET}\n",
    }
    result = resolve(make_spec(), secrets, "account")
    assert isinstance(result, Resolved)
    assert (result.user_secret, result.organization_secret) == (USER_SECRET, ORGANIZATION_SECRET)


def test_without_configuration_only_the_account_secret_is_needed() -> None:
    result = resolve(make_spec(configuration=None), {"account": all_secrets()["account"]}, "account")
    assert isinstance(result, Resolved)
    assert dict(result.configuration) == {}


def test_resolved_repr_shows_no_value() -> None:
    result = resolve(make_spec(), all_secrets(), "account")
    assert isinstance(result, Resolved)
    assert_no_values(repr(result))
    assert "50" not in repr(result)  # literal configuration values are not shown either


def _without(name: str) -> dict[str, dict[str, str] | None]:
    secrets = all_secrets()
    del secrets[name]
    return secrets


def _with(name: str, data: Mapping[str, str] | None) -> dict[str, Mapping[str, str] | None]:
    secrets: dict[str, Mapping[str, str] | None] = dict(all_secrets())
    secrets[name] = data
    return secrets


MISSING_CASES = [
    pytest.param(_without("account"), "account", ["'account'", "does not exist"], id="account-secret-absent"),
    pytest.param(
        _with("account", None), "account", ["'account'", "does not exist"], id="account-secret-none"
    ),
    pytest.param(
        _with("account", {"organizationSecret": ORGANIZATION_SECRET, "usersecret": USER_SECRET}),
        "account",
        ["'account'", "'userSecret'"],
        id="user-secret-key-missing",
    ),
    pytest.param(
        _with("account", {"userSecret": USER_SECRET, "orgSecret": ORGANIZATION_SECRET}),
        "account",
        ["'account'", "'organizationSecret'"],
        id="organization-secret-key-missing",
    ),
    pytest.param(
        _with("account", {"userSecret": "", "organizationSecret": ORGANIZATION_SECRET}),
        "account",
        ["'account'", "'userSecret'", "empty"],
        id="user-secret-empty",
    ),
    pytest.param(
        _with("account", {"userSecret": USER_SECRET, "organizationSecret": " \n\t "}),
        "account",
        ["'account'", "'organizationSecret'", "empty"],
        id="organization-secret-blank",
    ),
    pytest.param(
        _without("closeio-api"),
        "closeio-api",
        ["'closeio-api'", "does not exist", "'username'"],
        id="configuration-secret-absent",
    ),
    pytest.param(
        _with("closeio-api", {"apikey": API_KEY, "other": OTHER_VALUE}),
        "closeio-api",
        ["'closeio-api'", "'apiKey'", "'username'"],
        id="configuration-key-missing",
    ),
    pytest.param(
        _with("closeio-api", {"apiKey": "\n", "other": OTHER_VALUE}),
        "closeio-api",
        ["'closeio-api'", "'apiKey'", "empty"],
        id="configuration-value-blank",
    ),
]


@pytest.mark.parametrize(("secrets", "secret_name", "fragments"), MISSING_CASES)
def test_missing_input_names_secret_and_key_but_no_value(
    secrets: Mapping[str, Mapping[str, str] | None], secret_name: str, fragments: list[str]
) -> None:
    result = resolve(make_spec(), secrets, "account")
    assert isinstance(result, Missing)
    assert result.secret_name == secret_name
    for fragment in fragments:
        assert fragment in result.message
    assert_no_values(result.message)
    assert_no_values(repr(result))


def test_a_value_that_is_not_utf8_text_is_named_as_such() -> None:
    secrets: dict[str, Any] = {**all_secrets(), "closeio-api": {"apiKey": None}}
    missing = resolve(make_spec(), secrets, "account")
    assert isinstance(missing, Missing)
    assert missing.message == "Secret 'closeio-api' key 'apiKey' (configuration 'username') is not UTF-8 text"


@pytest.mark.parametrize("user_secret", ["pässword", "two words", "line\nbreak", "tab\there"])
def test_account_secrets_no_header_can_carry_wait_for_a_fix(user_secret: str) -> None:
    secrets: dict[str, Any] = {
        **all_secrets(),
        "account": {"userSecret": user_secret, "organizationSecret": "o"},
    }
    missing = resolve(make_spec(), secrets, "account")
    assert isinstance(missing, Missing)
    assert missing.secret_name == "account"
    assert "'userSecret'" in missing.message
    assert "only printable ASCII" in missing.message
    assert user_secret not in missing.message


def test_a_configuration_too_large_to_send_is_refused_before_the_request_is_built() -> None:
    huge = "x" * (MAX_VALUE_BYTES + 1)
    entries = [
        {"key": f"k{i}", "valueFrom": {"secretKeyRef": {"name": "big", "key": "v"}}} for i in range(200)
    ]
    too_large = resolve(make_spec(configuration=entries), {**all_secrets(), "big": {"v": huge}}, "account")
    assert isinstance(too_large, TooLarge)
    assert (
        too_large.message
        == f"configuration 'k0' is {MAX_VALUE_BYTES + 1} bytes; a value may have at most 65536"
    )

    fits = "y" * MAX_VALUE_BYTES  # each value fits, but together they do not
    too_many = resolve(make_spec(configuration=entries), {**all_secrets(), "big": {"v": fits}}, "account")
    assert isinstance(too_many, TooLarge)
    assert f"more than {MAX_CONFIGURATION_BYTES} bytes" in too_many.message

    within = resolve(make_spec(configuration=entries[:7]), {**all_secrets(), "big": {"v": fits}}, "account")
    assert isinstance(within, Resolved)
