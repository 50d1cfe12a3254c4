"""The element catalog: which connectors exist and what configuration each one needs.

Instance validation (required keys, defaults, which values are secrets) is driven entirely by
these definitions, the same way the platform drives it from `GET /elements/{key}`. The entries
follow section 8 of docs/open-connectors-api.md; element ids are environment-specific on the real
platform, so the ones here are illustrative (Close.io 146 and Freshdesk 491 match doc samples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PASSWORD = "PASSWORD"
TEXT_32 = "TEXTFIELD_32"
TEXT_128 = "TEXTFIELD_128"
TEXT_1000 = "TEXTFIELD_1000"
TEXTAREA = "TEXTAREA"
BOOLEAN = "BOOLEAN"

MASK = "********"

# Doc section 9: events are off and null values are filtered from responses unless an instance
# says otherwise.
PLATFORM_DEFAULTS = {"event.notification.enabled": "false", "filter.response.nulls": "true"}


@dataclass(frozen=True)
class ConfigDefinition:
    """One entry of an element's `configuration[]` list."""

    key: str
    name: str
    type: str = TEXT_128
    required: bool = False
    # Written into the instance's configuration at create, like the element's own settings.
    default_value: str | None = None
    hide_from_console: bool = False
    description: str = ""
    # What the platform reports for the key while an instance leaves it unset (in the element
    # definition and the instance's configuration entries), without writing it into the instance's
    # `configuration` map: the vendor's instance bodies list only keys that were given or that the
    # element itself defaults (doc 6.4), while its test suite reads these platform-wide defaults
    # back from `GET /instances/{id}/configuration` (doc 14).
    platform_default: str | None = None

    @property
    def is_secret(self) -> bool:
        return self.type == PASSWORD

    @property
    def reported_default(self) -> str | None:
        return self.default_value if self.default_value is not None else self.platform_default


@dataclass(frozen=True)
class Element:
    """A connector type; instances are created against one of these."""

    id: int
    key: str
    name: str
    hub: str
    authentication_type: str
    description: str
    configuration: tuple[ConfigDefinition, ...]

    @property
    def is_oauth(self) -> bool:
        return self.authentication_type.startswith("oauth")

    def definition(self, key: str) -> ConfigDefinition | None:
        for definition in self.configuration:
            if definition.key == key:
                return definition
        return None

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(d.key for d in self.configuration if d.required)

    @property
    def secret_keys(self) -> frozenset[str]:
        return frozenset(d.key for d in self.configuration if d.is_secret)

    @property
    def defaults(self) -> dict[str, str]:
        return {d.key: d.default_value for d in self.configuration if d.default_value is not None}

    def summary_json(self) -> dict[str, Any]:
        """The `element` object embedded in every instance (doc section 6.2, Swagger `Element`)."""
        return {
            "id": self.id,
            "name": self.name,
            "key": self.key,
            "description": self.description,
            "image": f"elements/provider_{self.key}.png",
            "active": True,
            "deleted": False,
            "typeOauth": self.is_oauth,
            "trialAccount": False,
            "transformationsEnabled": True,
            "authentication": {"type": self.authentication_type},
            "authenticationType": self.authentication_type,
            "hub": self.hub,
            "parameters": [],
        }

    def detail_json(self) -> dict[str, Any]:
        """`GET /elements/{keyOrId}`: the summary plus the configuration definitions."""
        body = self.summary_json()
        body["configuration"] = [
            {
                "id": self.id * 1000 + index,
                "key": d.key,
                "name": d.name,
                "type": d.type,
                "required": d.required,
                "defaultValue": d.reported_default,
                "hideFromConsole": d.hide_from_console,
                "description": d.description,
                "internal": False,
                "active": True,
            }
            for index, d in enumerate(self.configuration, start=1)
        ]
        return body


def _common_event_definitions(**defaults: str) -> tuple[ConfigDefinition, ...]:
    """Keys every element accepts (doc section 9); `defaults` uses `_` for `.` in key names."""

    def default(key: str) -> str | None:
        return defaults.get(key.replace(".", "_"))

    specs = [
        ("event.notification.enabled", "Events Enabled", BOOLEAN),
        ("event.vendor.type", "Event Type", TEXT_32),
        ("event.notification.type", "Event Notification Type", TEXT_32),
        ("event.notification.callback.url", "Event Notification Callback URL", TEXT_1000),
        ("event.notification.signature.key", "Callback Notification Signature Key", TEXT_128),
        ("event.poller.refresh_interval", "Event poller refresh interval (mins)", TEXT_32),
        ("event.poller.configuration", "Configure Polling", TEXTAREA),
        ("filter.response.nulls", "Filter null values from the response", BOOLEAN),
    ]
    return tuple(
        ConfigDefinition(
            key, name, type_, default_value=default(key), platform_default=PLATFORM_DEFAULTS.get(key)
        )
        for key, name, type_ in specs
    )


def _internal(key: str, value: str) -> ConfigDefinition:
    # Element-internal settings show up in instance configuration with hideFromConsole (doc 9).
    return ConfigDefinition(key, key, TEXT_128, default_value=value, hide_from_console=True)


def _oauth_definitions() -> tuple[ConfigDefinition, ...]:
    return (
        ConfigDefinition("oauth.api.key", "OAuth API Key", PASSWORD, required=True),
        ConfigDefinition("oauth.api.secret", "OAuth API Secret", PASSWORD, required=True),
        ConfigDefinition("oauth.callback.url", "OAuth Callback URL", TEXT_1000, required=True),
        ConfigDefinition("oauth.scope", "OAuth Scope", TEXT_1000),
        ConfigDefinition("oauth.user.refresh_token", "OAuth Refresh Token", PASSWORD),
        # The access token the platform obtained (oauth.py); written by the platform, never sent.
        ConfigDefinition("oauth.user.token", "OAuth Access Token", PASSWORD, hide_from_console=True),
    )


def build_catalog(*, closeio_password_required: bool = False) -> dict[str, Element]:
    """Return the catalog keyed by element key."""
    elements = [
        Element(
            146,
            "closeio",
            "Close.io",
            "crm",
            "basic",
            "Close.io CRM; the API key is sent as the username.",
            (
                # For Close.io the username *is* the API key and the platform returns it in clear
                # (doc 6.3), so it is deliberately not PASSWORD-typed.
                ConfigDefinition("username", "API Key", TEXT_32, required=True),
                ConfigDefinition("password", "Password", PASSWORD, required=closeio_password_required),
                _internal("base.url", "https://app.close.io/api/v1"),
                _internal("pagination.offset", "true"),
                _internal("pagination.max", "100"),
                *_common_event_definitions(),
            ),
        ),
        Element(
            491,
            "freshdeskv2",
            "Freshdesk",
            "helpdesk",
            "basic",
            "Freshdesk helpdesk (v2 API).",
            (
                ConfigDefinition("subdomain", "Subdomain", TEXT_32, required=True),
                ConfigDefinition("username", "API Key", TEXT_128, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            615,
            "freshservice",
            "Freshservice",
            "helpdesk",
            "basic",
            "Freshservice IT service desk.",
            (
                ConfigDefinition("username", "User Name", TEXT_128, required=True),
                ConfigDefinition("password", "Password", PASSWORD, required=True),
                ConfigDefinition("subdomain", "Subdomain", TEXT_32, required=True),
                _internal("base.url", "https://{subdomain}.freshservice.com"),
                _internal("pagination.max", "30"),
                _internal("pagination.offset", "false"),
                *_common_event_definitions(
                    event_vendor_type="polling",
                    event_poller_refresh_interval="15",
                    event_notification_enabled="false",
                ),
            ),
        ),
        Element(
            1,
            "jira",
            "JIRA",
            "helpdesk",
            "basic",
            "Atlassian JIRA.",
            (
                ConfigDefinition("username", "User Name", TEXT_128, required=True),
                ConfigDefinition("password", "Password", PASSWORD, required=True),
                ConfigDefinition("base.url", "JIRA site URL", TEXT_1000, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            2147,
            "bamboohr",
            "BambooHR",
            "humancapital",
            "basic",
            "BambooHR human capital management.",
            (
                ConfigDefinition("username", "API Key", TEXT_128, required=True),
                ConfigDefinition("company.name", "Company Subdomain", TEXT_128, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            4072,
            "helpscout",
            "Help Scout",
            "helpdesk",
            "basic",
            "Help Scout mailbox helpdesk.",
            (
                ConfigDefinition("username", "API Key", TEXT_128, required=True),
                ConfigDefinition("password", "Password", PASSWORD, required=True),
                ConfigDefinition("mailbox.name", "Mailbox Name", TEXT_128, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            3120,
            "pipedrive",
            "Pipedrive",
            "crm",
            "basic",
            "Pipedrive sales CRM (email/password variant).",
            (
                ConfigDefinition("pipedrive.email", "Email", TEXT_128, required=True),
                ConfigDefinition("pipedrive.password", "Password", PASSWORD, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            1183,
            "insightly",
            "Insightly",
            "crm",
            "basic",
            "Insightly CRM.",
            (
                ConfigDefinition("username", "User Name or Email", TEXT_128, required=True),
                ConfigDefinition("password", "API Key", PASSWORD, required=True),
                *_common_event_definitions(),
            ),
        ),
        Element(
            25,
            "sfdc",
            "Salesforce Sales Cloud",
            "crm",
            "oauth2",
            "Salesforce; instances are authorized with an OAuth code.",
            (*_oauth_definitions(), *_common_event_definitions()),
        ),
        Element(
            1262,
            "hubspot",
            "HubSpot Marketing",
            "marketing",
            "oauth2",
            "HubSpot; instances are authorized with an OAuth code.",
            (*_oauth_definitions(), *_common_event_definitions()),
        ),
    ]
    return {element.key: element for element in elements}


class Catalog:
    """Lookup by key or by id, as the `{keyOrId}` path parameter allows."""

    def __init__(self, elements: Mapping[str, Element]) -> None:
        self._by_key = dict(elements)
        self._by_id = {element.id: element for element in elements.values()}

    def all(self) -> list[Element]:
        return list(self._by_key.values())

    def get(self, key_or_id: str | int) -> Element | None:
        if isinstance(key_or_id, int):
            return self._by_id.get(key_or_id)
        element = self._by_key.get(key_or_id)
        if element is None and key_or_id.isdigit():
            element = self._by_id.get(int(key_or_id))
        return element

    @property
    def keys(self) -> list[str]:
        return list(self._by_key)
