"""The operator's names the plugin needs: the API group, kinds, plurals, annotations and reasons.

Repeated here, not imported: the plugin imports nothing of `connector_operator` (an import-linter
contract in pyproject.toml), so that it stays a small client of the API. tests/plugin/test_names.py
checks that every value agrees with the operator's and with the annotations the README documents.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "openconnectors.io"
VERSION: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
# Manifests may still say the earlier version (served, the same schema): taken as the current one.
API_VERSIONS: Final = (API_VERSION, f"{GROUP}/v1alpha1")
INSTANCE_KIND: Final = "ConnectorInstance"
INSTANCE_PLURAL: Final = "connectorinstances"
ACCOUNT_KIND: Final = "ConnectorAccount"
ACCOUNT_PLURAL: Final = "connectoraccounts"
CLUSTER_ACCOUNT_KIND: Final = "ClusterConnectorAccount"
CLUSTER_ACCOUNT_PLURAL: Final = "clusterconnectoraccounts"

FINALIZER: Final = f"{GROUP}/finalizer"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "open-connectors-operator"

# Day-2 marks on a ConnectorInstance (README, "Day-2 operations").
PAUSED_ANNOTATION: Final = f"{GROUP}/paused"
RECONCILE_REQUEST_ANNOTATION: Final = f"{GROUP}/reconcile-requested-at"
TAKE_OVER_ANNOTATION: Final = f"{GROUP}/take-over-from"

# Condition reasons the plugin acts on (README, "Conditions").
PAUSED_REASON: Final = "Paused"
DELETION_BLOCKED_REASON: Final = "DeletionBlocked"

# Where kopf keeps the progress of the operator's delete handler, whose `delayed` is the time of
# the deletion's next attempt (the operator's status.kopf, engine/deleteretry.py).
PROGRESS_FIELD: Final = ("status", "kopf", "progress")
NEXT_ATTEMPT_FIELD: Final = "nextAttemptAt"  # status.nextAttemptAt of a ConnectorInstance
DELETE_HANDLER: Final = "delete_instance"

# OAuth (issue 22): the reasons of an object waiting for a person, and the authorization Secret
# `authorize` writes (operator: api/oauth.py, api/status.py; its Secret watch: kube/secrets.py).
AUTHORIZATION_REQUIRED_REASON: Final = "AuthorizationRequired"
REAUTHENTICATION_REQUIRED_REASON: Final = "ReauthenticationRequired"
CODE_KEY: Final = "code"
STATE_KEY: Final = "state"
ERROR_KEY: Final = "error"
WATCH_LABEL: Final = f"{GROUP}/watch"  # the operator watches only Secrets with this label
WATCH_INPUT: Final = "input"  # its value on a Secret the operator reads (not one it writes)
