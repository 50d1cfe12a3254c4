"""What the remote instance is configured with: `spec.configuration` and `spec.events`.

Configuration entries are strings, literal or from a key of a Secret in the object's namespace
(`valueFrom`); `events` is a typed form of the common `event.*` keys, which the spec may then not
also set as entries (`EVENT_KEYS`, and `FILTER_NULLS_KEY` for `filterResponseNulls`). The Secret
references here are also what api/spec.py's `credentialsSecretRef` is made of.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field

from connector_operator.api.fields import NOT_SPACE, Model, SecretName, cel

__all__ = [
    "EVENT_KEYS",
    "FILTER_NULLS_KEY",
    "HTTP_URL",
    "ConfigurationEntry",
    "Events",
    "LocalObjectReference",
    "SecretKeySelector",
    "ValueSource",
    "VendorType",
]

HTTP_URL = r"^https?://[^ \t\n\r\f\v/?#]+" + NOT_SPACE + "*$"

# Configuration keys that have a typed field; setting them in both places is ambiguous.
EVENT_KEYS = (
    "event.notification.enabled",
    "event.vendor.type",
    "event.notification.callback.url",
    "event.poller.refresh_interval",
)
FILTER_NULLS_KEY = "filter.response.nulls"


class LocalObjectReference(Model):
    name: SecretName


class SecretKeySelector(Model):
    name: SecretName
    key: Annotated[
        str,
        Field(
            description="Key within the Secret's data whose value is used.",
            min_length=1,
            max_length=253,
            pattern=r"^[-._a-zA-Z0-9]+$",
        ),
    ]


class ValueSource(Model):
    secret_key_ref: Annotated[
        SecretKeySelector,
        Field(alias="secretKeyRef", description="Takes the value from a key of a Secret in this namespace."),
    ]


class ConfigurationEntry(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.value) != has(self.valueFrom)",
                    "exactly one of value and valueFrom must be set",
                )
            ]
        }
    )

    key: Annotated[
        str,
        Field(
            description=(
                "Configuration key of the connector, as the Open Connectors API names it "
                "(for Close.io: `username` holds the API key)."
            ),
            min_length=1,
            max_length=200,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        ),
    ]
    value: Annotated[
        str | None,
        Field(
            description="Literal value. Use valueFrom for anything secret: literal values are visible to "
            "anyone who can read the ConnectorInstance.",
            max_length=4096,
        ),
    ] = None
    value_from: Annotated[
        ValueSource | None,
        Field(alias="valueFrom", description="Takes the value from a Secret in the same namespace."),
    ] = None


class VendorType(StrEnum):
    WEBHOOK = "webhook"
    POLLING = "polling"


class Events(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.enabled || !has(self.vendorType) || self.vendorType != 'webhook' "
                    "|| has(self.callbackURL)",
                    "callbackURL is required when events are enabled with webhook notification",
                    fieldPath=".callbackURL",
                    reason="FieldValueRequired",
                )
            ]
        }
    )

    enabled: Annotated[
        bool, Field(description="Turns event notification on or off (`event.notification.enabled`).")
    ]
    vendor_type: Annotated[
        VendorType | None,
        Field(
            alias="vendorType",
            description="How the platform learns of changes at the vendor: `webhook` or `polling` "
            "(`event.vendor.type`). The connector's own default applies when omitted.",
        ),
    ] = None
    callback_url: Annotated[
        str | None,
        Field(
            alias="callbackURL",
            description="HTTP(S) URL the platform posts events to (`event.notification.callback.url`).",
            max_length=2048,
            pattern=HTTP_URL,
        ),
    ] = None
    polling_interval_minutes: Annotated[
        int | None,
        Field(
            alias="pollingIntervalMinutes",
            description="Minutes between polls when vendorType is polling (`event.poller.refresh_interval`).",
            ge=1,
            le=1440,
        ),
    ] = None
