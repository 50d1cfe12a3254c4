"""`kubectl openconnectors plan` and spec.oauth's Secrets (kubectl_openconnectors/plan_rules.py).

The plan counts the app credentials, authorization and refresh token Secrets among those an
instance reads: a new instance waits for a missing app credentials or refresh token Secret, but
not for its authorization Secret (the `authorize` command creates it when a person consents: the
plan says so instead); a changed client secret is a PUT of the instance, a new refresh token a
re-authentication in place; no value appears in the plan. On the real API server (the dry runs of
the operator's kinds need the CRD), as the rest of the plan's tests.
"""

from __future__ import annotations

from typing import Any, get_args

from kubernetes import client

from connector_operator.api import oauth
from connector_operator.api.configuration import LocalObjectReference
from kubectl_openconnectors import plan, plan_rules
from tests.plugin.test_plan import by_name, crds, instance, secret, store

__all__ = ["crds"]  # the CRD fixture, used by name

OLD_VALUE, NEW_VALUE = "old-client-secret-Hq31", "new-refresh-token-Pw58"  # must never appear in a plan
CALLBACK = "http://127.0.0.1:8765/callback"


def with_oauth(name: str, **refs: str) -> dict[str, Any]:
    spec = {"appCredentialsSecretRef": {"name": refs.pop("app")}, "callbackURL": CALLBACK}
    return instance(name, oauth={**spec, **{field: {"name": ref} for field, ref in refs.items()}})


def test_the_oauth_secrets_and_keys_are_the_operators() -> None:
    """The plugin repeats them (it imports nothing of the operator): a rename fails here."""
    references = {
        field.alias
        for field in oauth.OAuth.model_fields.values()
        if LocalObjectReference in (field.annotation, *get_args(field.annotation))
    }
    keys = {
        "appCredentialsSecretRef": {oauth.CLIENT_ID_KEY, oauth.CLIENT_SECRET_KEY},
        "authorizationSecretRef": {oauth.CODE_KEY, oauth.STATE_KEY, oauth.ERROR_KEY},
        "refreshTokenSecretRef": {oauth.REFRESH_TOKEN_KEY},
    }
    assert set(plan_rules.OAUTH_READS) == references == set(keys)
    assert {field: set(read) for field, read in plan_rules.OAUTH_READS.items()} == keys
    assert {oauth.CODE_KEY, oauth.REFRESH_TOKEN_KEY} == plan_rules.GRANT_KEYS


def test_a_new_oauth_instance_waits_for_its_app_and_token_secrets_and_for_consent(
    api_client: client.ApiClient, namespace: str, crds: None
) -> None:
    documents = [
        secret("account", userSecret="u", organizationSecret="o"),
        with_oauth("consented", app="crm-app", authorizationSecretRef="crm-consent"),
        with_oauth("migrated", app="crm-app", refreshTokenSecretRef="crm-refresh"),
    ]

    items = by_name(plan.compute(api_client, documents, namespace))

    consented, migrated = items["consented"], items["migrated"]
    assert (consented.action, migrated.action) == ("create", "create")
    assert "once a person consents (kubectl openconnectors authorize consented)" in consented.detail
    assert "waits for Secret crm-app: in neither the cluster nor the file" in consented.detail
    assert "crm-consent" not in consented.detail  # the authorize command creates it
    assert "once a person consents" not in migrated.detail
    assert "waits for Secret crm-app, Secret crm-refresh:" in migrated.detail


def test_a_changed_client_secret_is_a_put_and_a_new_refresh_token_a_reauthentication(
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    crds: None,
) -> None:
    stored = with_oauth("crm", app="crm-app", refreshTokenSecretRef="crm-refresh")
    store(custom, namespace, stored)
    core.create_namespaced_secret(namespace, secret("crm-app", clientId="id", clientSecret=OLD_VALUE))
    core.create_namespaced_secret(namespace, secret("crm-refresh", refreshToken=OLD_VALUE))
    files = [
        secret("crm-app", clientId="id", clientSecret=NEW_VALUE),
        secret("crm-refresh", refreshToken=NEW_VALUE),
    ]

    items = plan.compute(api_client, files, namespace)

    assert [(i.kind, i.name, i.action, i.fields) for i in items] == [
        ("Secret", "crm-app", "update", ("data.clientSecret",)),
        ("Secret", "crm-refresh", "update", ("data.refreshToken",)),
        (
            "ConnectorInstance",
            "crm",
            "update",
            ("Secret crm-app keys: clientSecret", "Secret crm-refresh keys: refreshToken"),
        ),
    ]
    detail = items[2].detail
    assert "one PUT of instance 4711 for Secret crm-app keys: clientSecret;" in detail
    assert (
        "a new grant (Secret crm-refresh keys: refreshToken): re-authenticates instance 4711 in place"
        in detail
    )
    assert OLD_VALUE not in repr(items)
    assert NEW_VALUE not in repr(items)
