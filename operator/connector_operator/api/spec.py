"""The desired state a user writes: `ConnectorInstance.spec`.

Field descriptions are the reference manual (`kubectl explain` prints them), and the schema
carries every check the API server can run before the operator sees the object: patterns,
enums and CEL rules. There are no schema defaults on optional fields: a default written by the
API server shows as drift in Argo CD, so defaults are applied in code and reported in status.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from connector_operator.api.account import AccountRef
from connector_operator.api.fields import (
    API_URL_PATTERN,
    API_URL_SHAPE,
    CONNECTOR_KEY_PATTERN,
    NOT_SPACE,
    Model,
    SecretName,
    cel,
)
from connector_operator.api.names import IDENTITY_TAG_PREFIX

HTTP_URL = r"^https?://[^ \t\n\r\f\v/?#]+" + NOT_SPACE + "*$"

# Configuration keys that have a typed field; setting them in both places is ambiguous.
EVENT_KEYS = (
    "event.notification.enabled",
    "event.vendor.type",
    "event.notification.callback.url",
    "event.poller.refresh_interval",
)
FILTER_NULLS_KEY = "filter.response.nulls"
ACCOUNT_EXCLUSIVE = (
    "accountRef excludes credentialsSecretRef and apiURL: the account supplies the credentials "
    "and the platform"
)


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


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class ConnectorInstanceSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.events) || !has(self.configuration) || "
                    "!self.configuration.exists(c, c.key in " + str(list(EVENT_KEYS)).replace('"', "'") + ")",
                    "event.* keys may not be set in configuration when the events field sets them",
                    fieldPath=".configuration",
                ),
                cel(
                    "!has(self.filterResponseNulls) || !has(self.configuration) || "
                    f"!self.configuration.exists(c, c.key == '{FILTER_NULLS_KEY}')",
                    f"{FILTER_NULLS_KEY} may not be set in configuration when filterResponseNulls is set",
                    fieldPath=".configuration",
                ),
                cel(
                    # In any case: a platform that compares tags without case must not match ours.
                    "!has(self.tags) || self.tags.all(t, !t.lowerAscii().startsWith('"
                    + IDENTITY_TAG_PREFIX
                    + "'))",
                    f"tags starting with {IDENTITY_TAG_PREFIX!r} are reserved for the operator's own "
                    "tags (in any case)",
                    fieldPath=".tags",
                ),
                cel(
                    "!has(self.accountRef) || (!has(self.credentialsSecretRef) && !has(self.apiURL))",
                    ACCOUNT_EXCLUSIVE,
                    fieldPath=".accountRef",
                ),
            ]
        }
    )

    connector_key: Annotated[
        str,
        Field(
            alias="connectorKey",
            description="Key of the connector (element) on the platform, for example `closeio`.",
            min_length=1,
            max_length=100,
            pattern=CONNECTOR_KEY_PATTERN,
        ),
    ]
    account_ref: Annotated[
        AccountRef | None,
        Field(
            alias="accountRef",
            description="The account whose credentials, endpoint and request budget this instance "
            "uses: a ConnectorAccount in this namespace or a ClusterConnectorAccount that allows it. "
            "Excludes credentialsSecretRef and apiURL. With neither accountRef nor credentialsSecretRef, "
            "the operator's default account (`--default-account`) is used.",
        ),
    ] = None
    credentials_secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            alias="credentialsSecretRef",
            description="Secret in this namespace with the Open Connectors account secrets, "
            "under the keys `userSecret` and `organizationSecret`. Excludes accountRef.",
        ),
    ] = None
    instance_name: Annotated[
        str | None,
        Field(
            alias="instanceName",
            description="Display name of the remote instance. Defaults to `<namespace>-<name>`.",
            min_length=1,
            max_length=200,
        ),
    ] = None
    tags: Annotated[
        # No leading or trailing space either: " k8s-uid:…" must not slip past the reserved prefix
        # and then be trimmed into one of ours by the platform (the desired request also drops a
        # tag that is reserved once stripped of any Unicode space).
        list[Annotated[str, Field(min_length=1, max_length=100, pattern=f"^{NOT_SPACE}(.*{NOT_SPACE})?$")]]
        | None,
        Field(
            description="Tags of the remote instance. The operator adds its own identity tags "
            f"(prefixed `{IDENTITY_TAG_PREFIX}`), which may not be set here.",
            max_length=50,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None
    api_url: Annotated[
        str | None,
        Field(
            alias="apiURL",
            description=f"{API_URL_SHAPE} Defaults to the operator's `--default-api-url`. Excludes "
            "accountRef (the account names the platform).",
            max_length=2048,
            pattern=API_URL_PATTERN,
        ),
    ] = None
    configuration: Annotated[
        list[ConfigurationEntry] | None,
        Field(
            description="Configuration entries of the connector instance. Values are strings, "
            "literal or from Secrets; the connector's defaults apply to keys not listed.",
            max_length=200,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]},
        ),
    ] = None
    events: Annotated[
        Events | None,
        Field(description="Event notification settings: a typed form of the common `event.*` configuration."),
    ] = None
    filter_response_nulls: Annotated[
        bool | None,
        Field(
            alias="filterResponseNulls",
            description="Whether the platform strips nulls from API responses (`filter.response.nulls`).",
        ),
    ] = None
    token_secret: Annotated[
        LocalObjectReference | None,
        Field(
            alias="tokenSecret",
            description="Secret the operator writes the instance token into (keys `token`, `instanceID`, "
            "`apiURL`). Defaults to `<name>-token`. An existing Secret not managed by the operator is "
            "never overwritten.",
        ),
    ] = None
    deletion_policy: Annotated[
        DeletionPolicy | None,
        Field(
            alias="deletionPolicy",
            description="What happens to the remote instance when this object is deleted: `Delete` (the "
            "default) deletes it, `Orphan` leaves it in place and makes no API call.",
        ),
    ] = None

    @model_validator(mode="after")
    def _one_value_source(self) -> ConnectorInstanceSpec:
        # The CRD's CEL rule enforces this on the server; repeating it keeps unit-built specs honest.
        for entry in self.configuration or []:
            if (entry.value is None) == (entry.value_from is None):
                raise ValueError(
                    f"configuration {entry.key!r}: exactly one of value and valueFrom must be set"
                )
        return self

    @model_validator(mode="after")
    def _account_excludes_own_credentials(self) -> ConnectorInstanceSpec:
        # Mirrors the CEL rule of the same message.
        if self.account_ref is not None and (self.credentials_secret_ref or self.api_url):
            raise ValueError(ACCOUNT_EXCLUSIVE)
        return self


def effective_instance_name(spec: ConnectorInstanceSpec, namespace: str, name: str) -> str:
    return spec.instance_name or f"{namespace}-{name}"


def effective_token_secret(spec: ConnectorInstanceSpec, name: str) -> str:
    """The Secret the token goes into: `spec.tokenSecret`, else `<name>-token` (the CRD says so)."""
    return spec.token_secret.name if spec.token_secret else f"{name}-token"


def referenced_secrets(spec: ConnectorInstanceSpec) -> frozenset[str]:
    """The Secrets of the object's namespace the spec reads: its own credentials Secret, if it
    names one (an account's Secret is the account's), and every configuration Secret."""
    names = {spec.credentials_secret_ref.name} if spec.credentials_secret_ref else set()
    names.update(e.value_from.secret_key_ref.name for e in spec.configuration or [] if e.value_from)
    return frozenset(names)


def related_secrets(spec: ConnectorInstanceSpec, name: str) -> frozenset[str]:
    """Every Secret whose change concerns the object: those it reads and the one it writes."""
    return referenced_secrets(spec) | {effective_token_secret(spec, name)}


def effective_deletion_policy(spec: ConnectorInstanceSpec) -> DeletionPolicy:
    return spec.deletion_policy or DeletionPolicy.DELETE


def parse_spec(raw: Any) -> ConnectorInstanceSpec:
    return ConnectorInstanceSpec.model_validate(raw)
