"""`domain.desired`: the request body the platform should see, and its keyed change digest.

Covers the body's shape (`name`, `element.key`, `tags`, `configuration`), the identity tags
`k8s-uid:<uid>` and `k8s-object:<namespace>/<name>` after the user's tags (sorted, deduplicated),
the typed fields mapped to their configuration keys as strings, the default instance name
`<namespace>-<name>`, and the digest: stable for equal inputs, changed by any value that would be
sent (a Secret value included), by another key or object, and free of the values it covers.
The key itself, and upgrades from UID-keyed digests: tests/unit/test_digest_key.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector_operator.api.spec import ConnectorInstanceSpec, parse_spec
from connector_operator.domain.desired import (
    DIGEST_PREFIX,
    DesiredInstance,
    Keyed,
    desired_instance,
)
from connector_operator.domain.inputs import Resolved, resolve
from connector_operator.domain.ownership import identity_tag

NAMESPACE = "sales"
NAME = "acme-closeio"
UID = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
KEYED = Keyed(bytes(range(32)), UID)
API_KEY = "closeio-Api-Key-secret!"
CALLBACK = "https://hooks.example.com/closeio"


def make_spec(**overrides: Any) -> ConnectorInstanceSpec:
    raw: dict[str, Any] = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}}
    raw.update(overrides)
    return parse_spec(raw)


def make_desired(
    spec: ConnectorInstanceSpec, configuration: dict[str, str] | None = None, uid: str = UID
) -> DesiredInstance:
    return desired_instance(spec, namespace=NAMESPACE, name=NAME, uid=uid, configuration=configuration or {})


def test_body_has_name_element_tags_and_configuration() -> None:
    spec = make_spec(
        instanceName="acme",
        tags=["demo", "crm", "demo"],
        events={"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 15},
        filterResponseNulls=True,
    )
    body = make_desired(spec, {"username": API_KEY, "pagination.max": "50"}).body()
    assert body == {
        "name": "acme",
        "element": {"key": "closeio"},
        "tags": ["crm", "demo", f"k8s-uid:{UID}", f"k8s-object:{NAMESPACE}/{NAME}"],
        "configuration": {
            "username": API_KEY,
            "pagination.max": "50",
            "event.notification.enabled": "true",
            "event.vendor.type": "polling",
            "event.poller.refresh_interval": "15",
            "filter.response.nulls": "true",
        },
    }


def test_instance_name_defaults_to_namespace_dash_name() -> None:
    assert make_desired(make_spec()).body()["name"] == f"{NAMESPACE}-{NAME}"


def test_without_user_tags_only_identity_tags_are_sent() -> None:
    assert make_desired(make_spec()).body()["tags"] == [identity_tag(UID), f"k8s-object:{NAMESPACE}/{NAME}"]
    assert identity_tag(UID) == f"k8s-uid:{UID}"


def test_user_tags_are_sorted_and_deduplicated_whatever_their_order() -> None:
    one = make_desired(make_spec(tags=["zeta", "alpha", "mid", "alpha"]))
    other = make_desired(make_spec(tags=["mid", "alpha", "zeta"]))
    assert one.body()["tags"][:3] == ["alpha", "mid", "zeta"]
    assert one.body() == other.body()
    assert one.digest(KEYED) == other.digest(KEYED)


def test_without_typed_fields_configuration_is_passed_as_given() -> None:
    configuration = {"username": API_KEY, "pagination.max": "50"}
    assert make_desired(make_spec(), configuration).body()["configuration"] == configuration


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"events": {"enabled": True, "vendorType": "webhook", "callbackURL": CALLBACK}},
            {
                "event.notification.enabled": "true",
                "event.vendor.type": "webhook",
                "event.notification.callback.url": CALLBACK,
            },
            id="webhook",
        ),
        pytest.param(
            {"events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 1440}},
            {
                "event.notification.enabled": "true",
                "event.vendor.type": "polling",
                "event.poller.refresh_interval": "1440",
            },
            id="polling",
        ),
        pytest.param(
            {"events": {"enabled": False}}, {"event.notification.enabled": "false"}, id="events-disabled"
        ),
        pytest.param(
            {"filterResponseNulls": True}, {"filter.response.nulls": "true"}, id="filter-nulls-true"
        ),
        pytest.param(
            {"filterResponseNulls": False}, {"filter.response.nulls": "false"}, id="filter-nulls-false"
        ),
    ],
)
def test_typed_fields_become_string_configuration(
    overrides: dict[str, Any], expected: dict[str, str]
) -> None:
    configuration = make_desired(make_spec(**overrides), {"username": API_KEY}).body()["configuration"]
    assert configuration == {"username": API_KEY, **expected}


def test_repr_of_desired_instance_shows_no_configuration_value() -> None:
    desired = make_desired(make_spec(), {"username": API_KEY})
    assert API_KEY not in repr(desired)


# The digest


def test_digest_is_stable_for_equal_inputs() -> None:
    spec = make_spec(tags=["crm"], events={"enabled": False})
    one = make_desired(spec, {"username": API_KEY, "pagination.max": "50"})
    # A separately built, equal request, with the configuration in another order.
    other = make_desired(
        make_spec(tags=["crm"], events={"enabled": False}), {"pagination.max": "50", "username": API_KEY}
    )
    assert one.digest(KEYED) == other.digest(KEYED)


def _resolved_configuration(api_key: str, page_size: str) -> dict[str, str]:
    spec = make_spec(
        configuration=[
            {"key": "username", "valueFrom": {"secretKeyRef": {"name": "closeio-api", "key": "apiKey"}}},
            {"key": "pagination.max", "value": page_size},
        ]
    )
    resolved = resolve(
        spec,
        {
            "account": {"userSecret": "user-s3cret", "organizationSecret": "org-s3cret"},
            "closeio-api": {"apiKey": api_key},
        },
        "account",
    )
    assert isinstance(resolved, Resolved)
    return dict(resolved.configuration)


BASE_DIGEST_INPUT: dict[str, Any] = {
    "spec": {
        "tags": ["crm"],
        "events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 15},
    },
    "secret": API_KEY,
    "literal": "50",
}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"secret": API_KEY + "-rotated"}, id="secret-value"),
        pytest.param({"literal": "51"}, id="literal-value"),
        pytest.param(
            {
                "spec": {
                    "tags": ["crm"],
                    "events": {"enabled": False, "vendorType": "polling", "pollingIntervalMinutes": 15},
                }
            },
            id="events-enabled",
        ),
        pytest.param(
            {
                "spec": {
                    "tags": ["crm"],
                    "events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 16},
                }
            },
            id="polling-interval",
        ),
        pytest.param(
            {
                "spec": {
                    "tags": ["crm"],
                    "events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 15},
                    "filterResponseNulls": False,
                }
            },
            id="filter-nulls-added",
        ),
        pytest.param(
            {
                "spec": {
                    "tags": ["crm", "sales"],
                    "events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 15},
                }
            },
            id="tags",
        ),
        pytest.param(
            {
                "spec": {
                    "tags": ["crm"],
                    "instanceName": "renamed",
                    "events": {"enabled": True, "vendorType": "polling", "pollingIntervalMinutes": 15},
                }
            },
            id="instance-name",
        ),
    ],
)
def test_digest_changes_when_anything_sent_changes(change: dict[str, Any]) -> None:
    def digest_of(inputs: dict[str, Any]) -> str:
        configuration = _resolved_configuration(inputs["secret"], inputs["literal"])
        return make_desired(make_spec(**inputs["spec"]), configuration).digest(KEYED)

    assert digest_of({**BASE_DIGEST_INPUT, **change}) != digest_of(BASE_DIGEST_INPUT)


def test_digest_depends_on_the_key_and_on_the_object() -> None:
    desired = make_desired(make_spec(), {"username": API_KEY})
    assert desired.digest(KEYED) != desired.digest(Keyed(bytes(32), UID))
    assert desired.digest(KEYED) != desired.digest(Keyed(KEYED.key, "another-uid"))


def test_digest_contains_no_value() -> None:
    configuration = {"username": API_KEY, "password": "pa55-word-Value"}
    digest = make_desired(make_spec(), configuration).digest(KEYED)
    for value in configuration.values():
        assert value not in digest
    assert digest.startswith(DIGEST_PREFIX)
    assert set(digest.removeprefix(DIGEST_PREFIX)) <= set("0123456789abcdef")


def test_digest_changes_with_the_platform_url() -> None:
    desired = make_desired(make_spec(), {"username": "k"})
    assert desired.digest(KEYED, "https://a.example/elements/api-v2") != desired.digest(
        KEYED, "https://b.example/elements/api-v2"
    )
