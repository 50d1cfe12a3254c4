"""What the operator reports: `ConnectorInstance.status` and its kstatus-native conditions.

Conditions follow design.md section 4: `Ready` (normal-true), `Synced` (the last attempt),
`Reconciling` and `Stalled` (abnormal-true, as kstatus reads them). Reasons are a small,
documented set so that dashboards and health scripts can match on them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ConditionType(StrEnum):
    READY = "Ready"
    SYNCED = "Synced"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


class Reason(StrEnum):
    """Every reason a condition can carry. Documented in the README's condition table."""

    AVAILABLE = "Available"
    CREATING = "Creating"
    UPDATING = "Updating"
    WAITING_FOR_SECRET = "WaitingForSecret"
    CONFIGURATION_REJECTED = "ConfigurationRejected"
    CREDENTIALS_REJECTED = "CredentialsRejected"
    CONNECTOR_NOT_FOUND = "ConnectorNotFound"
    INSTANCE_INVALID = "InstanceInvalid"
    INSTANCE_DISABLED = "InstanceDisabled"
    REMOTE_NOT_FOUND = "RemoteNotFound"
    RATE_LIMITED = "RateLimited"
    API_UNAVAILABLE = "APIUnavailable"
    SECRET_CONFLICT = "SecretConflict"
    INVALID_SPEC = "InvalidSpec"
    API_HOST_NOT_ALLOWED = "APIHostNotAllowed"
    DELETION_BLOCKED = "DeletionBlocked"
    # Day-2 operations (issue 11).
    PAUSED = "Paused"
    ADOPTION_CONFLICT = "AdoptionConflict"
    DRIFT_CORRECTED = "DriftCorrected"  # an Event's reason, never a condition's
    # Accounts (issue 10).
    ACCOUNT_NOT_FOUND = "AccountNotFound"
    ACCOUNT_NOT_ALLOWED = "AccountNotAllowed"
    ACCOUNT_UNAVAILABLE = "AccountUnavailable"
    CIRCUIT_OPEN = "CircuitOpen"
    KUBERNETES_ERROR = "KubernetesAPIError"
    RECONCILE_SUCCESS = "ReconcileSuccess"
    RECONCILE_ERROR = "ReconcileError"
    IDLE = "Idle"
    HEALTHY = "Healthy"
    # OAuth connectors (issue 22): a person must give (again) a grant.
    AUTHORIZATION_REQUIRED = "AuthorizationRequired"
    REAUTHENTICATION_REQUIRED = "ReauthenticationRequired"


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Condition(Model):
    type: Annotated[str, Field(description="Condition type: Ready, Synced, Reconciling or Stalled.")]
    status: Annotated[str, Field(description="True, False or Unknown.", pattern=r"^(True|False|Unknown)$")]
    reason: Annotated[
        str, Field(description="One-word CamelCase reason for the condition's last transition.")
    ]
    message: Annotated[str, Field(description="Human-readable detail; never contains secret values.")] = ""
    last_transition_time: Annotated[
        str,
        Field(alias="lastTransitionTime", description="When the condition last changed status (RFC 3339)."),
    ]
    observed_generation: Annotated[
        int | None,
        Field(alias="observedGeneration", description="The metadata.generation this condition describes."),
    ] = None


class ConnectorFacts(Model):
    key: Annotated[str | None, Field(description="Connector (element) key.")] = None
    name: Annotated[str | None, Field(description="Connector display name, as the API reports it.")] = None
    hub: Annotated[str | None, Field(description="Hub the connector belongs to, for example `crm`.")] = None
    authentication_type: Annotated[
        str | None,
        Field(alias="authenticationType", description="Authentication type of the connector, e.g. `basic`."),
    ] = None


class Authorization(Model):
    url: Annotated[
        str | None,
        Field(
            description="While a person must authorize (reason AuthorizationRequired or "
            "ReauthenticationRequired): the provider's consent URL, from the platform, with a `state` "
            "the operator checks when the code comes back. `kubectl openconnectors authorize` opens it.",
        ),
    ] = None
    grant_digest: Annotated[
        str | None,
        Field(
            alias="grantDigest",
            description="Keyed digest of the last grant (code or refresh token) the operator used or "
            "refused, so that it is never sent twice. Not the grant.",
        ),
    ] = None


class ConnectorInstanceStatus(Model):
    observed_generation: Annotated[
        int | None,
        Field(
            alias="observedGeneration",
            description="The generation fully handled: applied to the platform, or judged impossible.",
        ),
    ] = None
    instance_id: Annotated[
        int | None,
        Field(alias="instanceID", description="ID of the remote connector instance on the platform."),
    ] = None
    token_secret_name: Annotated[
        str | None,
        Field(alias="tokenSecretName", description="Name of the Secret holding the instance token."),
    ] = None
    api_url: Annotated[
        str | None, Field(alias="apiURL", description="Effective platform API URL the instance lives at.")
    ] = None
    instance_name: Annotated[
        str | None, Field(alias="instanceName", description="Effective display name of the remote instance.")
    ] = None
    deletion_policy: Annotated[
        str | None, Field(alias="deletionPolicy", description="Effective deletion policy.")
    ] = None
    account: Annotated[
        str | None,
        Field(
            description="Whose credentials the remote instance is managed with: `ConnectorAccount/<name>`, "
            "`ClusterConnectorAccount/<name>` (also the operator's --default-account) or "
            "`Secret/<name>` (credentialsSecretRef). Once the instance exists it cannot change.",
        ),
    ] = None
    connector: Annotated[
        ConnectorFacts | None, Field(description="Facts about the connector, from the platform's response.")
    ] = None
    valid: Annotated[
        bool | None, Field(description="Whether the platform reports the instance as valid.")
    ] = None
    disabled: Annotated[
        bool | None, Field(description="Whether the platform reports the instance as disabled.")
    ] = None
    last_sync_time: Annotated[
        str | None,
        Field(
            alias="lastSyncTime",
            description="When the remote instance was last confirmed in sync (RFC 3339).",
        ),
    ] = None
    applied_digest: Annotated[
        str | None,
        Field(
            alias="appliedDigest",
            description="Digest of the last request applied to the platform, used to skip no-op "
            "updates: an HMAC keyed with the operator's own secret key, so it contains no secret "
            "values and guesses of them cannot be tested against it.",
        ),
    ] = None
    token_digest: Annotated[
        str | None,
        Field(
            alias="tokenDigest",
            description="Keyed digest of the current instance token, to detect a stale token Secret "
            "after a restart. Not the token.",
        ),
    ] = None
    planned_action: Annotated[
        str | None,
        Field(
            alias="plannedAction",
            description="With managementPolicy ObserveOnly: what Full would do now, `None`, `Create` or "
            "`Update: <fields>` (a dry run before switching to Full). Absent under Full.",
        ),
    ] = None
    next_attempt_at: Annotated[
        str | None,
        Field(
            alias="nextAttemptAt",
            description="While the operator retries (Reconciling True): when it tries next, if that "
            "is a minute or more away (RFC 3339). Absent when nothing is retried, and for shorter "
            "waits, which are not written (a status write per attempt of a backoff's first seconds "
            "would cost more than it tells).",
        ),
    ] = None
    authorization: Annotated[
        Authorization | None,
        Field(description="OAuth connectors: what a person needs to authorize the instance."),
    ] = None
    last_handled_reconcile_at: Annotated[
        str | None,
        Field(
            alias="lastHandledReconcileAt",
            description="The value of the `openconnectors.io/reconcile-requested-at` annotation last "
            "handled by a full pass with a platform check.",
        ),
    ] = None
    conditions: Annotated[
        list[Condition] | None,
        Field(
            description="Ready, Synced, Reconciling and Stalled, in kstatus conventions.",
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        ),
    ] = None
