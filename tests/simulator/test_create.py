"""Instance creation: element lookup, required configuration, defaults, stringification, masking."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures.simulator import SimulatorHandle
from tests.simulator.support import (
    CLOSEIO_API_KEY,
    CLOSEIO_PASSWORD,
    ISO_UTC,
    MASK,
    OAUTH_CODE_MESSAGE,
    TOKEN,
    assert_error,
    closeio_body,
    create,
    oauth_code,
)


def _sfdc_body(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "element": {"key": "sfdc"},
        "name": "sales",
        "configuration": {
            "oauth.api.key": "consumer-key",
            "oauth.api.secret": "consumer-secret",
            "oauth.callback.url": "https://example.com/callback",
        },
    }
    body.update(extra)
    return body


def test_closeio_instance_has_the_documented_shape(simulator_client: httpx.Client) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    instance = create(simulator_client, closeio_body(name="acme"))
    assert isinstance(instance["id"], int)
    assert instance["id"] >= 400_000
    assert TOKEN.fullmatch(instance["token"])
    assert instance["valid"] is True
    assert instance["disabled"] is False
    assert instance["tags"] == ["acme"]  # tags default to the name
    assert ISO_UTC.fullmatch(instance["createdDate"])
    created = datetime.strptime(instance["createdDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=1)
    assert isinstance(instance["updatedDate"], int)
    element = instance["element"]
    assert {k: element[k] for k in ("id", "key", "name", "hub")} == {
        "id": 146,
        "key": "closeio",
        "name": "Close.io",
        "hub": "crm",
    }
    assert element["authentication"] == {"type": "basic"}
    assert element["typeOauth"] is False
    assert instance["elementId"] == 146
    assert instance["configuration"] == {
        "base.url": "https://app.close.io/api/v1",
        "pagination.offset": "true",
        "pagination.max": "100",
        "username": CLOSEIO_API_KEY,  # Close.io's API key is returned in clear
        "password": MASK,
    }
    assert "providerData" not in instance


def test_ids_are_monotonic_and_tokens_unique(simulator_client: httpx.Client) -> None:
    instances = [create(simulator_client, closeio_body(name=f"n{i}")) for i in range(5)]
    ids = [instance["id"] for instance in instances]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert len({instance["token"] for instance in instances}) == 5


def test_element_in_the_path_and_the_connector_alias(simulator_client: httpx.Client) -> None:
    body = closeio_body()
    del body["element"]
    by_path = create(simulator_client, body, path="/elements/closeio/instances")
    by_id_path = create(simulator_client, body, path="/elements/146/instances")
    by_alias = create(simulator_client, {**body, "connector": {"key": "closeio"}})
    assert {i["element"]["key"] for i in (by_path, by_id_path, by_alias)} == {"closeio"}
    assert_error(
        simulator_client.post("/elements/closeio/instances", json={**body, "element": {"key": "jira"}}), 400
    )


def test_unknown_element_is_named_in_a_404(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    body = {**closeio_body(), "element": {"key": "no-such-element"}}
    assert_error(simulator_client.post("/instances", json=body), 404, "no-such-element")
    assert_error(simulator_client.post("/elements/nothere/instances", json=closeio_body()), 404, "nothere")
    assert simulator.control.instances() == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"name": None}, "name"),
        ({"name": "  <b></b> "}, "name"),
        ({"name": 42}, "name"),
        ({"element": None}, "element"),
        ({"element": "closeio"}, "element"),
        ({"tags": "one"}, "tags"),
        ({"tags": ["ok", 3]}, "tags"),
        ({"configuration": ["username"]}, "configuration"),
        ({"providerData": "code"}, "providerData"),
    ],
)
def test_malformed_fields_are_400_naming_the_field(
    simulator: SimulatorHandle, simulator_client: httpx.Client, change: dict[str, object], fragment: str
) -> None:
    body = {**closeio_body(), **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert_error(simulator_client.post("/instances", json=body), 400, fragment)
    assert simulator.control.instances() == []


def test_one_400_names_every_missing_required_key(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    response = simulator_client.post("/instances", json={"element": {"key": "jira"}, "name": "j"})
    message = assert_error(response, 400)
    for key in ("username", "password", "base.url"):
        assert key in message
    # Blank values count as missing too.
    blank = {"element": {"key": "jira"}, "name": "j", "configuration": {"username": " ", "password": "p"}}
    message = assert_error(simulator_client.post("/instances", json=blank), 400, "username", "base.url")
    assert "password" not in message
    assert_error(
        simulator_client.post("/instances", json={**closeio_body(), "configuration": {}}), 400, "username"
    )
    assert simulator.control.counters() == {"POST /instances": 3}
    assert simulator.control.instances() == []


def test_values_are_stringified(simulator: SimulatorHandle, simulator_client: httpx.Client) -> None:
    poller = {"contacts": {"url": "/hubs/crm/contacts", "idField": "id"}}
    configuration = {
        "username": "k",
        "pagination.max": 50,
        "filter.response.nulls": False,
        "event.poller.refresh_interval": 15.0,
        "event.poller.configuration": poller,
    }
    instance = create(simulator_client, closeio_body(configuration=configuration))
    config = instance["configuration"]
    assert config["pagination.max"] == "50"
    assert config["filter.response.nulls"] == "false"
    assert config["event.poller.refresh_interval"] == "15"
    assert json.loads(config["event.poller.configuration"]) == poller
    assert all(isinstance(value, str) for value in config.values())


def test_passwords_are_masked_everywhere_but_stored(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    instance = create(simulator_client, closeio_body())
    instance_id = instance["id"]
    seen = [
        instance,
        simulator_client.get(f"/instances/{instance_id}").json(),
        simulator_client.get("/instances").json()[0],
        simulator_client.put(f"/instances/{instance_id}", json={"name": "x"}).json(),
        simulator_client.patch(f"/instances/{instance_id}", json={"tags": ["t"]}).json(),
    ]
    for body in seen:
        assert body["configuration"]["password"] == MASK
        assert body["configuration"]["username"] == CLOSEIO_API_KEY
    entries = simulator_client.get(f"/instances/{instance_id}/configuration").json()
    assert {e["key"]: e["propertyValue"] for e in entries}["password"] == MASK
    raw = simulator.control.instances()[0]
    assert raw["configuration"]["password"] == CLOSEIO_PASSWORD


def test_oauth_element_requires_a_code_and_never_echoes_provider_data(
    simulator: SimulatorHandle, simulator_client: httpx.Client
) -> None:
    response = simulator_client.post("/instances", json=_sfdc_body())
    assert_error(response, 400)
    assert response.json()["message"] == OAUTH_CODE_MESSAGE
    assert_error(simulator_client.post("/instances", json=_sfdc_body(providerData={"code": ""})), 400)
    missing = {**_sfdc_body(providerData={"code": "c"}), "configuration": {}}
    assert_error(simulator_client.post("/instances", json=missing), 400, "oauth.api.key", "oauth.api.secret")

    code = oauth_code(simulator_client)
    instance = create(simulator_client, _sfdc_body(providerData={"code": code}))
    assert "providerData" not in instance
    assert instance["configuration"]["oauth.api.key"] == MASK
    assert instance["configuration"]["oauth.api.secret"] == MASK
    assert instance["element"]["typeOauth"] is True
    assert "providerData" not in simulator_client.get(f"/instances/{instance['id']}").json()
    assert simulator.control.instances()[0]["providerData"] == {"code": code}


def test_oauth_instance_from_an_existing_refresh_token(simulator_client: httpx.Client) -> None:
    body = _sfdc_body(externalAuthentication="initial")
    assert_error(simulator_client.post("/instances", json=body), 400, "oauth.user.refresh_token")
    body["configuration"] = {**body["configuration"], "oauth.user.refresh_token": "rt"}  # type: ignore[dict-item]
    instance = create(simulator_client, body)
    assert instance["externalAuthentication"] == "initial"
    assert instance["configuration"]["oauth.user.refresh_token"] == MASK


def test_html_is_stripped_from_name_and_tags(simulator_client: httpx.Client) -> None:
    body = closeio_body(
        name='<a href="https://evil.example">acme</a> <b>crm</b>', tags=["<i>x</i>", "x", "<br/>", "y"]
    )
    instance = create(simulator_client, body)
    assert instance["name"] == "acme crm"
    assert instance["tags"] == ["x", "y"]
    untagged = create(simulator_client, closeio_body(name="<p>plain</p>"))
    assert untagged["tags"] == ["plain"]
    assert create(simulator_client, closeio_body(tags=[]))["tags"] == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("event.vendor.type", "webhooks"),
        ("event.vendor.type", "push"),
        ("event.notification.type", "email"),
        ("event.notification.callback.url", "ftp://example.com/hook"),
        ("event.notification.callback.url", "not a url"),
        ("event.notification.callback.url", "https://"),
        ("event.notification.enabled", "yes"),
        ("filter.response.nulls", "maybe"),
    ],
)
def test_invalid_event_configuration_is_400_naming_the_key(
    simulator: SimulatorHandle, simulator_client: httpx.Client, key: str, value: str
) -> None:
    body = closeio_body(configuration={"username": "k", key: value})
    assert_error(simulator_client.post("/instances", json=body), 400, key)
    assert simulator.control.instances() == []


@pytest.mark.parametrize("vendor_type", ["webhook", "polling"])
def test_valid_event_configuration_enables_events(simulator_client: httpx.Client, vendor_type: str) -> None:
    configuration = {
        "username": "k",
        "event.notification.enabled": "TRUE",
        "event.vendor.type": vendor_type,
        "event.notification.type": "webhook",
        "event.notification.callback.url": "https://hooks.example.com/oc?x=1",
        "filter.response.nulls": True,
    }
    instance = create(simulator_client, closeio_body(configuration=configuration))
    assert instance["eventsEnabled"] is True
    assert instance["configuration"]["event.notification.enabled"] == "true"
    assert instance["configuration"]["filter.response.nulls"] == "true"
    assert instance["configuration"]["event.vendor.type"] == vendor_type


def test_element_defaults_are_merged_and_can_be_overridden(simulator_client: httpx.Client) -> None:
    body = {
        "element": {"key": "freshservice"},
        "name": "fs",
        "configuration": {"username": "u", "password": "p", "subdomain": "acme", "pagination.max": 10},
    }
    config = create(simulator_client, body)["configuration"]
    assert config["pagination.max"] == "10"
    assert config["event.vendor.type"] == "polling"
    assert config["event.poller.refresh_interval"] == "15"
    assert config["event.notification.enabled"] == "false"
    assert config["password"] == MASK
