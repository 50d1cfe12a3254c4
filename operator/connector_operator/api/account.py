"""Accounts: `ConnectorAccount` (namespaced) and `ClusterConnectorAccount` (cluster-scoped).

An account is what the platform team owns: the platform endpoint, the organization and user
secrets, and the request budget every instance of the account shares. A ConnectorInstance names
one with `spec.accountRef` (an `AccountRef`) instead of carrying its own credentials. A cluster
account also says which namespaces may use it (`namespaceSelector`, where empty means none) and,
optionally, which connectors (`allowedConnectors`).

As for instances, the schema carries every check the API server can run, and there are no schema
defaults on optional fields (a default written by the API server is drift to Argo CD).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from connector_operator.api.fields import (
    API_URL_PATTERN,
    API_URL_SHAPE,
    CONNECTOR_KEY_PATTERN,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    Model,
    cel,
)
from connector_operator.api.names import ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND
from connector_operator.api.status import Condition

# Label keys and values as Kubernetes defines them: an optional DNS-subdomain prefix and a name of
# at most 63 characters; a value of at most 63 characters, possibly empty.
# `[.]` rather than an escaped dot: the pattern goes into a CEL string literal too.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Budgets beyond these are typing mistakes, not plans: the operator's own bound on calls in
# flight (`--max-in-flight`) is 32 by default.
MAX_REQUESTS_PER_SECOND = 1000
MAX_BURST = 10000
MAX_IN_FLIGHT = 1000


class AccountKind(StrEnum):
    CONNECTOR_ACCOUNT = ACCOUNT_KIND
    CLUSTER_CONNECTOR_ACCOUNT = CLUSTER_ACCOUNT_KIND


class AccountRef(Model):
    """What a ConnectorInstance's `spec.accountRef` names."""

    kind: Annotated[
        AccountKind,
        Field(
            description="`ConnectorAccount` (in the instance's namespace) or `ClusterConnectorAccount` "
            "(whose namespaceSelector must select the instance's namespace)."
        ),
    ]
    name: Annotated[
        str,
        Field(description="Name of the account.", min_length=1, max_length=253, pattern=DNS_SUBDOMAIN),
    ]


CREDENTIALS = (
    "Secret with the Open Connectors account secrets, under the keys `userSecret` and `organizationSecret`."
)


def _no_namespace(schema: dict[str, Any]) -> None:
    # Declared only to be refused: an undeclared field would be pruned without a word, and the
    # author would believe the account reads a Secret of another namespace.
    schema["properties"]["namespace"] = {
        "type": "string",
        "description": "Not allowed: a ConnectorAccount reads its Secret from its own namespace.",
    }
    schema["x-kubernetes-validations"] = [
        cel(
            "!has(self.__namespace__)",
            "a ConnectorAccount's credentials Secret is in the account's own namespace; "
            "a Secret of another namespace needs a ClusterConnectorAccount",
            fieldPath=".namespace",
        )
    ]


class AccountSecretRef(Model):
    """A ConnectorAccount's credentials: a Secret in the account's own namespace."""

    model_config = ConfigDict(json_schema_extra=_no_namespace)

    name: Annotated[
        str,
        Field(
            description="Name of a Secret in the account's namespace.",
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN,
        ),
    ]


class ClusterAccountSecretRef(Model):
    """A ClusterConnectorAccount's credentials: a Secret in a namespace the platform team names."""

    name: Annotated[
        str,
        Field(description="Name of the Secret.", min_length=1, max_length=253, pattern=DNS_SUBDOMAIN),
    ]
    namespace: Annotated[
        str,
        Field(
            description="Namespace of the Secret: the operator's own namespace, or one of the chart's "
            "`operator.accountSecretsNamespaces` (the operator may read Secrets nowhere else).",
            min_length=1,
            max_length=63,
            pattern=DNS_LABEL,
        ),
    ]


class RequestBudget(Model):
    """A token bucket shared by every platform call made for any instance of the account."""

    requests_per_second: Annotated[
        float,
        Field(
            alias="requestsPerSecond",
            description="Sustained rate of platform calls for all instances of this account together.",
            gt=0,
            le=MAX_REQUESTS_PER_SECOND,
        ),
    ]
    burst: Annotated[
        int,
        Field(
            description="Calls that may be made at once after a quiet period (the bucket's size). A "
            "restarted operator starts with an empty bucket, so a restart never adds a burst.",
            ge=1,
            le=MAX_BURST,
        ),
    ]
    max_in_flight: Annotated[
        int,
        Field(
            alias="maxInFlight",
            description="Platform calls for this account in flight at once, within the operator's "
            "own bounds (`--max-in-flight`, `--max-in-flight-per-host`).",
            ge=1,
            le=MAX_IN_FLIGHT,
        ),
    ]


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                    "values must be non-empty for In and NotIn, and absent for Exists and DoesNotExist",
                    fieldPath=".values",
                )
            ]
        }
    )

    key: Annotated[str, Field(description="Label key.", min_length=1, max_length=317, pattern=LABEL_KEY)]
    operator: Annotated[SelectorOperator, Field(description="`In`, `NotIn`, `Exists` or `DoesNotExist`.")]
    values: Annotated[
        list[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] | None,
        Field(
            description="Label values for In and NotIn; absent for Exists and DoesNotExist.",
            max_length=64,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None


class LabelSelector(Model):
    """A Kubernetes label selector. Unlike elsewhere in Kubernetes, an empty one selects nothing."""

    match_labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] | None,
        Field(
            alias="matchLabels",
            description="Labels a namespace must carry, with these values.",
            json_schema_extra={
                "maxProperties": 64,
                "x-kubernetes-validations": [
                    cel(
                        f"self.all(k, k.size() <= 317 && k.matches('{LABEL_KEY}'))",
                        "matchLabels keys must be label keys",
                    )
                ],
            },
        ),
    ] = None
    match_expressions: Annotated[
        list[LabelSelectorRequirement] | None,
        Field(
            alias="matchExpressions",
            description="Requirements a namespace's labels must meet, all of them.",
            max_length=64,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None


def _api_url(default: str) -> Any:
    return Field(
        alias="apiURL", description=f"{API_URL_SHAPE} {default}", max_length=2048, pattern=API_URL_PATTERN
    )


# Day-2 features an account's owner allows (issue 11), the same on both kinds.
AllowAdoption = Annotated[
    bool | None,
    Field(
        alias="allowAdoption",
        description="Whether ConnectorInstances using this account may adopt or observe an existing "
        "remote instance (spec.instanceID). Off by default: through an account whose secrets she "
        "cannot read, a tenant could otherwise take over, or read the token of, any instance of the "
        "account that no object manages. Refused instances stall with `AccountNotAllowed`.",
    ),
]
AllowSecretExport = Annotated[
    bool | None,
    Field(
        alias="allowSecretExport",
        description="Whether ConnectorInstances using this account may render its secrets into their "
        "token Secrets (spec.tokenSecret.template.includeAccountSecrets), for a workload that needs "
        "the whole Authorization header. Off by default: the account's secrets then reach whoever "
        "may read those Secrets. Refused instances stall with `AccountNotAllowed`.",
    ),
]


class ConnectorAccountSpec(Model):
    api_url: Annotated[str | None, _api_url("Defaults to the operator's `--default-api-url`.")] = None
    credentials_secret_ref: Annotated[
        AccountSecretRef,
        Field(
            alias="credentialsSecretRef", description=f"{CREDENTIALS} It lives in the account's namespace."
        ),
    ]
    request_budget: Annotated[
        RequestBudget | None,
        Field(
            alias="requestBudget",
            description="Pace of the platform calls made for this account's instances. Without it "
            "only the operator's own bounds apply.",
        ),
    ] = None
    allow_adoption: AllowAdoption = None
    allow_secret_export: AllowSecretExport = None


class ClusterConnectorAccountSpec(Model):
    api_url: Annotated[str | None, _api_url("Defaults to the operator's `--default-api-url`.")] = None
    credentials_secret_ref: Annotated[
        ClusterAccountSecretRef,
        Field(alias="credentialsSecretRef", description=CREDENTIALS),
    ]
    request_budget: Annotated[
        RequestBudget | None,
        Field(
            alias="requestBudget",
            description="Pace of the platform calls made for this account's instances, in all "
            "namespaces together. Without it only the operator's own bounds apply.",
        ),
    ] = None
    namespace_selector: Annotated[
        LabelSelector | None,
        Field(
            alias="namespaceSelector",
            description="Namespaces whose ConnectorInstances may use this account, by their labels. "
            "Absent or empty selects no namespace (not all): an instance elsewhere stalls with "
            "`AccountNotAllowed` and nothing is sent.",
        ),
    ] = None
    allowed_connectors: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100, pattern=CONNECTOR_KEY_PATTERN)]] | None,
        Field(
            alias="allowedConnectors",
            description="Connector (element) keys instances of this account may use. Absent: any "
            "connector. Another connectorKey stalls with `AccountNotAllowed`.",
            min_length=1,
            max_length=200,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None
    allow_adoption: AllowAdoption = None
    allow_secret_export: AllowSecretExport = None


class StatusModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class BudgetStatus(StatusModel):
    requests_per_second: Annotated[
        float | None, Field(alias="requestsPerSecond", description="The budget's sustained rate.")
    ] = None
    burst: Annotated[int | None, Field(description="The budget's bucket size.")] = None
    max_in_flight: Annotated[
        int | None, Field(alias="maxInFlight", description="The budget's bound on calls in flight.")
    ] = None
    available: Annotated[
        float | None, Field(description="Calls that could start now (tokens in the bucket) when written.")
    ] = None
    in_flight: Annotated[
        int | None, Field(alias="inFlight", description="Calls in flight for this account when written.")
    ] = None


class CircuitState(StrEnum):
    CLOSED = "Closed"
    OPEN = "Open"
    HALF_OPEN = "HalfOpen"


class CircuitStatus(StatusModel):
    state: Annotated[
        CircuitState | None,
        Field(
            description="`Closed` (calls flow), `Open` (the platform failed repeatedly: calls wait, "
            "instances report `AccountUnavailable`) or `HalfOpen` (one probe call is let through)."
        ),
    ] = None
    consecutive_failures: Annotated[
        int | None,
        Field(
            alias="consecutiveFailures",
            description="Server errors, timeouts and network errors in a row (4xx answers do not count).",
        ),
    ] = None
    opened_at: Annotated[
        str | None, Field(alias="openedAt", description="When the circuit last opened (RFC 3339).")
    ] = None


class ConnectorAccountStatus(StatusModel):
    """What the operator reports for either account kind."""

    observed_generation: Annotated[
        int | None,
        Field(alias="observedGeneration", description="The generation the conditions describe."),
    ] = None
    conditions: Annotated[
        list[Condition] | None,
        Field(
            description="Ready (the credentials were verified with one authenticated call; False with "
            "`CircuitOpen` while the platform fails), Reconciling and Stalled (`CredentialsRejected`), "
            "in kstatus conventions.",
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = None
    instances: Annotated[
        int | None, Field(description="Number of ConnectorInstances using this account.")
    ] = None
    used_by: Annotated[
        list[str] | None,
        Field(
            alias="usedBy",
            description="Some of the ConnectorInstances using this account (`namespace/name`), which "
            "keep it from being deleted.",
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None
    stray_instances: Annotated[
        int | None,
        Field(
            alias="strayInstances",
            description="Remote instances of this account that carry this operator's identity or claim "
            "tags but belong to no ConnectorInstance it watches (left by a cluster rebuilt without a "
            "cluster name, or by a finalizer removed by hand), as last listed. Never deleted by the "
            "operator: adopt them (spec.instanceID with openconnectors.io/take-over-from) or delete "
            "them on the platform.",
        ),
    ] = None
    stray_instance_ids: Annotated[
        list[int] | None,
        Field(
            alias="strayInstanceIDs",
            description="The IDs of the first stray instances (at most 20).",
            max_length=20,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None
    budget: Annotated[
        BudgetStatus | None, Field(description="The request budget's state when last written.")
    ] = None
    circuit: Annotated[
        CircuitStatus | None, Field(description="The circuit breaker's state when last written.")
    ] = None


def parse_account_spec(kind: str, raw: Any) -> ConnectorAccountSpec | ClusterConnectorAccountSpec:
    """The spec of an account object of either kind (`kind` as in the object, e.g. `body['kind']`)."""
    if kind == CLUSTER_ACCOUNT_KIND:
        return ClusterConnectorAccountSpec.model_validate(raw)
    if kind == ACCOUNT_KIND:
        return ConnectorAccountSpec.model_validate(raw)
    raise ValueError(f"not an account kind: {kind!r}")
