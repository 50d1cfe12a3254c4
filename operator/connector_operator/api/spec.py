"""The desired state a user writes: `ConnectorInstance.spec`.

Field descriptions are the reference manual (`kubectl explain` prints them), and the schema
carries every check the API server can run before the operator sees the object: patterns,
enums and CEL rules. There are no schema defaults on optional fields: a default written by the
API server shows as drift in Argo CD, so defaults are applied in code and reported in status.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from connector_operator.api.account import AccountRef
from connector_operator.api.fields import (
    API_URL_PATTERN,
    API_URL_SHAPE,
    CONNECTOR_KEY_PATTERN,
    DNS_SUBDOMAIN,
    NOT_SPACE,
    Model,
    SecretName,
    cel,
)
from connector_operator.api.names import IDENTITY_TAG_PREFIX, RESERVED_PREFIX

HTTP_URL = r"^https?://[^ \t\n\r\f\v/?#]+" + NOT_SPACE + "*$"

# Configuration keys that have a typed field; setting them in both places is ambiguous.
EVENT_KEYS = (
    "event.notification.enabled",
    "event.vendor.type",
    "event.notification.callback.url",
    "event.poller.refresh_interval",
)
FILTER_NULLS_KEY = "filter.response.nulls"
OBSERVE_NEEDS_ID = "managementPolicy ObserveOnly requires instanceID: the instance to observe"
INSTANCE_ID_FIXED = (
    "instanceID is set when the object is created and never added, changed or removed later: "
    "to manage another instance, create another object"
)
DURATION = r"^([0-9]{1,7}(ms|s|m|h))+$"
MIN_RESYNC, MAX_RESYNC = "30s", "168h"
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


class ManagementPolicy(StrEnum):
    FULL = "Full"
    OBSERVE_ONLY = "ObserveOnly"


# Keys the operator writes into the token Secret itself; a template may not reuse them.
TOKEN_SECRET_KEYS = ("token", "instanceID", "apiURL")
DATA_KEY = r"^[-._a-zA-Z0-9]+$"
# A label or annotation key: an optional DNS-subdomain prefix and a name of at most 63 characters.
METADATA_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Secret types the operator writes: Opaque, or a Service Binding type (servicebinding.io/<type>).
# An allowlist: other types mean something to someone (kubernetes.io/service-account-token makes
# the API server mint a token; helm.sh/release.v1 is a Helm release record that a platform
# team's next `helm upgrade` would act on).
SECRET_TYPE = r"^(Opaque|servicebinding[.]io/[-._a-zA-Z0-9]{1,63})$"


def _metadata_keys(field: str, what: str) -> JsonDict:
    return cel(
        f"self.all(k, size(k) <= 317 && k.matches('{METADATA_KEY}') && !k.startsWith('{RESERVED_PREFIX}'))",
        f"{what} keys must be valid Kubernetes {what} keys and not start with {RESERVED_PREFIX!r} "
        "(reserved for the operator's own)",
    )


class TokenSecretTemplate(Model):
    include_account_secrets: Annotated[
        bool | None,
        Field(
            alias="includeAccountSecrets",
            description="Lets the templates use `userSecret` and `organizationSecret`, the account's "
            "secrets. Anyone who can read the token Secret can then read them: leave it off unless the "
            "workload needs the whole Authorization header.",
        ),
    ] = None
    data: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]],
        Field(
            description="Extra keys of the token Secret, each rendered from a Jinja template over "
            "`token`, `instanceID`, `apiURL`, `connectorKey`, `instanceName` (and, with "
            "includeAccountSecrets, `userSecret` and `organizationSecret`). Only output, `if`, `~` and "
            "the filters `tojson`, `b64encode`, `upper`, `lower`, `trim`, `default` and `urlencode` are "
            "allowed: no loops, calls or attribute access. Example: "
            '`OC_AUTHORIZATION: "User {{ userSecret }}, Organization {{ organizationSecret }}, Element '
            '{{ token }}"`. A template the operator cannot render stalls the object with `InvalidSpec`.',
            min_length=1,
            max_length=16,
            json_schema_extra={
                "x-kubernetes-validations": [
                    cel(
                        f"self.all(k, size(k) <= 253 && k.matches('{DATA_KEY}') && "
                        f"!(k in {list(TOKEN_SECRET_KEYS)!r}))".replace('"', "'"),
                        "template keys must be valid Secret keys other than " + ", ".join(TOKEN_SECRET_KEYS),
                    )
                ]
            },
        ),
    ]


class TokenSecret(Model):
    name: Annotated[
        str | None,
        Field(
            description="Name of the Secret, in this namespace. Defaults to `<name>-token`.",
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN,
        ),
    ] = None
    type: Annotated[
        str | None,
        Field(
            description="Type of the Secret: `Opaque` (the default) or a Service Binding type, "
            "`servicebinding.io/<type>`. Changing it replaces the Secret (a Secret's type cannot "
            "change). Setting type, labels, annotations or template needs an author who may create "
            "Secrets in the namespace (the chart's admission policy).",
            max_length=253,
            pattern=SECRET_TYPE,
        ),
    ] = None
    labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] | None,
        Field(
            description="Labels of the Secret, besides the operator's own.",
            max_length=32,
            json_schema_extra={"x-kubernetes-validations": [_metadata_keys("labels", "label")]},
        ),
    ] = None
    annotations: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]] | None,
        Field(
            description="Annotations of the Secret, besides the operator's own (`openconnectors.io/"
            "token-digest` changes whenever the token does: a checksum for rolling workloads).",
            max_length=32,
            json_schema_extra={"x-kubernetes-validations": [_metadata_keys("annotations", "annotation")]},
        ),
    ] = None
    template: Annotated[
        TokenSecretTemplate | None,
        Field(description="Extra keys rendered from templates, for a workload that reads the Secret as is."),
    ] = None

    @model_validator(mode="after")
    def _nothing_reserved(self) -> TokenSecret:
        # Mirrors the CEL rules: a spec built in code must not take the operator's own marks either.
        if self.type is not None and re.fullmatch(SECRET_TYPE, self.type) is None:
            raise ValueError(f"type {self.type[:80]!r} is not written: Opaque or servicebinding.io/<type>")
        for key in [*(self.labels or {}), *(self.annotations or {})]:
            if key.startswith(RESERVED_PREFIX) or re.fullmatch(METADATA_KEY, key) is None:
                raise ValueError(f"label or annotation key {key[:80]!r} is not allowed")
        for key in self.template.data if self.template else ():
            if key in TOKEN_SECRET_KEYS or re.fullmatch(DATA_KEY, key) is None:
                raise ValueError(f"template key {key[:80]!r} is not allowed")
        return self


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
                    # The platform strips markup from what it stores and may decode entities:
                    # "<b></b>k8s-uid:…" or "&#107;8s-uid:…" would become one of the operator's
                    # marks once stored, which prove ownership (domain/ownership.py).
                    "!has(self.tags) || "
                    "self.tags.all(t, !t.matches('[<>]') && !t.matches('&[#A-Za-z0-9]+;'))",
                    "tags may not contain '<', '>' or an HTML entity (such as '&#107;'): the platform "
                    "rewrites them, and could turn a tag into one of the operator's reserved tags",
                    fieldPath=".tags",
                ),
                cel(
                    "!has(self.accountRef) || (!has(self.credentialsSecretRef) && !has(self.apiURL))",
                    ACCOUNT_EXCLUSIVE,
                    fieldPath=".accountRef",
                ),
                cel(
                    "!has(self.managementPolicy) || self.managementPolicy != 'ObserveOnly' "
                    "|| has(self.instanceID)",
                    OBSERVE_NEEDS_ID,
                    fieldPath=".managementPolicy",
                    reason="FieldValueRequired",
                ),
                cel(
                    "has(self.instanceID) == has(oldSelf.instanceID) "
                    "&& (!has(self.instanceID) || self.instanceID == oldSelf.instanceID)",
                    INSTANCE_ID_FIXED,
                    fieldPath=".instanceID",
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
            f"(prefixed `{IDENTITY_TAG_PREFIX}`), which may not be set here; nor '<', '>' or HTML "
            "entities, which the platform rewrites.",
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
        TokenSecret | None,
        Field(
            alias="tokenSecret",
            description="Secret the operator writes the instance token into (keys `token`, `instanceID`, "
            "`apiURL`, and those of `template`). Defaults to `<name>-token`. An existing Secret not "
            "managed by the operator is never overwritten; the operator owns the data of its own.",
        ),
    ] = None
    instance_id: Annotated[
        int | None,
        Field(
            alias="instanceID",
            description="An existing remote instance to manage instead of creating one (adoption), or "
            "to observe (managementPolicy ObserveOnly). Adoption tags it with this object's identity "
            "and brings it to the spec with one update; an instance tagged by another object, or managed "
            "or observed by another live object, is refused (`AdoptionConflict`). An instance whose old "
            "object is gone but still tagged (its cluster died) is taken over with the annotation "
            "`openconnectors.io/take-over-from: <old object UID>`, refused while that object exists. "
            "Set when the object is created; it cannot change later.",
            ge=1,
            json_schema_extra={"format": "int64"},
        ),
    ] = None
    management_policy: Annotated[
        ManagementPolicy | None,
        Field(
            alias="managementPolicy",
            description="`Full` (the default): the operator creates, updates and deletes the remote "
            "instance. `ObserveOnly` (requires instanceID): it only reads the instance, exports its token "
            "into the token Secret and reports in `status.plannedAction` what Full would do; it never "
            "creates, updates or deletes the remote instance, and deleting the object never deletes it, "
            "whatever deletionPolicy says. For instances made elsewhere, such as OAuth instances "
            "authorized in the Open Connectors UI.",
        ),
    ] = None
    resync_interval: Annotated[
        str | None,
        Field(
            alias="resyncInterval",
            description=f"How often the operator checks the remote instance for drift, as a duration "
            f"(`90s`, `10m`, `1h30m`; {MIN_RESYNC} to {MAX_RESYNC}). Defaults to the operator's "
            "`--resync-interval`.",
            max_length=32,
            pattern=DURATION,
            json_schema_extra={
                "x-kubernetes-validations": [
                    cel(
                        f"duration(self) >= duration('{MIN_RESYNC}') && "
                        f"duration(self) <= duration('{MAX_RESYNC}')",
                        f"resyncInterval must be between {MIN_RESYNC} and {MAX_RESYNC}",
                    )
                ]
            },
        ),
    ] = None
    deletion_policy: Annotated[
        DeletionPolicy | None,
        Field(
            alias="deletionPolicy",
            description="What happens to the remote instance when this object is deleted: `Delete` (the "
            "default) deletes it (only an instance that carries this object's identity tag or claim), "
            "`Orphan` leaves it in place and hands it over: one update removes this object's identity "
            "tags, so that another object may adopt it with instanceID (an Event says so; when the "
            "platform cannot be called the object is released anyway and the Event names the tag left).",
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

    @model_validator(mode="after")
    def _observed_instance_named(self) -> ConnectorInstanceSpec:
        if self.management_policy is ManagementPolicy.OBSERVE_ONLY and self.instance_id is None:
            raise ValueError(OBSERVE_NEEDS_ID)
        if self.resync_interval is not None:
            seconds = parse_duration(self.resync_interval)
            if not parse_duration(MIN_RESYNC) <= seconds <= parse_duration(MAX_RESYNC):
                raise ValueError(f"resyncInterval must be between {MIN_RESYNC} and {MAX_RESYNC}")
        return self


def effective_instance_name(spec: ConnectorInstanceSpec, namespace: str, name: str) -> str:
    return spec.instance_name or f"{namespace}-{name}"


def effective_token_secret(spec: ConnectorInstanceSpec, name: str) -> str:
    """The Secret the token goes into: `spec.tokenSecret.name`, else `<name>-token` (the CRD says so)."""
    return spec.token_secret.name if spec.token_secret and spec.token_secret.name else f"{name}-token"


def effective_management_policy(spec: ConnectorInstanceSpec) -> ManagementPolicy:
    return spec.management_policy or ManagementPolicy.FULL


def observe_only(spec: ConnectorInstanceSpec) -> bool:
    return effective_management_policy(spec) is ManagementPolicy.OBSERVE_ONLY


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]{1,7})(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds of a duration in the subset of Go's syntax the CRD allows (`1h30m`, `90s`, `500ms`)."""
    if re.fullmatch(DURATION, text) is None:
        raise ValueError(f"not a duration: {text[:40]!r}")
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(text))


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
