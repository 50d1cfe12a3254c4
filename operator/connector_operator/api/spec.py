"""The desired state a user writes: `ConnectorInstance.spec`, and the defaults read from it.

Field descriptions are the reference manual (`kubectl explain` prints them), and the schema
carries every check the API server can run before the operator sees the object: patterns,
enums and CEL rules. There are no schema defaults on optional fields: a default written by the
API server shows as drift in Argo CD, so defaults are applied in code (`effective_*`) and reported
in status. This module owns the spec as a whole, its policies and durations; its parts have their
own modules: the instance's configuration and events (api/configuration.py) and the token
Secret's shape (api/tokensecret.py).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from connector_operator.api.account import AccountRef
from connector_operator.api.configuration import (
    EVENT_KEYS,
    FILTER_NULLS_KEY,
    ConfigurationEntry,
    Events,
    LocalObjectReference,
)
from connector_operator.api.fields import (
    API_URL_PATTERN,
    API_URL_SHAPE,
    CONNECTOR_KEY_PATTERN,
    NOT_SPACE,
    Model,
    cel,
)
from connector_operator.api.names import IDENTITY_TAG_PREFIX
from connector_operator.api.oauth import OAuth, grant_secret
from connector_operator.api.tokensecret import TokenSecret

__all__ = [
    "ACCOUNT_EXCLUSIVE",
    "DURATION",
    "INSTANCE_ID_FIXED",
    "MAX_RESYNC",
    "MIN_RESYNC",
    "OBSERVE_NEEDS_ID",
    "ConnectorInstanceSpec",
    "DeletionPolicy",
    "LocalObjectReference",  # re-exported (api/configuration.py's)
    "ManagementPolicy",
    "effective_deletion_policy",
    "effective_instance_name",
    "effective_management_policy",
    "effective_token_secret",
    "observe_only",
    "parse_duration",
    "parse_spec",
    "referenced_secrets",
    "related_secrets",
]

OAUTH_NOT_OBSERVED = (
    "oauth excludes managementPolicy ObserveOnly: an observed instance is never written, so it is "
    "never authorized either"
)
OAUTH_KEYS_RESERVED = (
    "oauth.* configuration keys may not be set in configuration when the oauth field sets them"
)
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


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class ManagementPolicy(StrEnum):
    FULL = "Full"
    OBSERVE_ONLY = "ObserveOnly"


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
                    "!has(self.oauth) || !has(self.managementPolicy) "
                    "|| self.managementPolicy != 'ObserveOnly'",
                    OAUTH_NOT_OBSERVED,
                    fieldPath=".oauth",
                ),
                cel(
                    "!has(self.oauth) || !has(self.configuration) || "
                    "!self.configuration.exists(c, c.key.startsWith('oauth.'))",
                    OAUTH_KEYS_RESERVED,
                    fieldPath=".configuration",
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
    oauth: Annotated[
        OAuth | None,
        Field(
            description="For a connector that authenticates with OAuth 2.0: the app's client "
            "credentials, the callback URL and scopes, and where the grant comes from (a one-time "
            "code a person gives with `kubectl openconnectors authorize`, or a refresh token). "
            "Without a usable grant the object is Stalled with reason `AuthorizationRequired` and "
            "`status.authorization.url` holds the provider's consent URL; when the provider later "
            "refuses the instance's refresh token it is `ReauthenticationRequired`, and a new grant "
            "re-authenticates the same instance. With instanceID: re-authenticates the adopted "
            "instance. Excludes managementPolicy ObserveOnly and `oauth.*` configuration keys.",
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
        if self.oauth is not None and self.management_policy is ManagementPolicy.OBSERVE_ONLY:
            raise ValueError(OAUTH_NOT_OBSERVED)
        if self.oauth is not None and any(e.key.startswith("oauth.") for e in self.configuration or []):
            raise ValueError(OAUTH_KEYS_RESERVED)
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
    names one (an account's Secret is the account's), every configuration Secret, and OAuth's app
    credentials and grant Secrets."""
    names = {spec.credentials_secret_ref.name} if spec.credentials_secret_ref else set()
    names.update(e.value_from.secret_key_ref.name for e in spec.configuration or [] if e.value_from)
    if spec.oauth is not None:
        names.update((spec.oauth.app_credentials_secret_ref.name, grant_secret(spec.oauth)))
    return frozenset(names)


def related_secrets(spec: ConnectorInstanceSpec, name: str) -> frozenset[str]:
    """Every Secret whose change concerns the object: those it reads and the one it writes."""
    return referenced_secrets(spec) | {effective_token_secret(spec, name)}


def effective_deletion_policy(spec: ConnectorInstanceSpec) -> DeletionPolicy:
    return spec.deletion_policy or DeletionPolicy.DELETE


def parse_spec(raw: Any) -> ConnectorInstanceSpec:
    return ConnectorInstanceSpec.model_validate(raw)
