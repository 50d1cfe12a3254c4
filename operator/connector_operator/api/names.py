"""Names that identify our resources and our marks on other objects (design.md section 2)."""

from __future__ import annotations

from typing import Final

GROUP: Final = "openconnectors.io"
# The version the operator speaks and the API server stores (issue 23). The earlier one is still
# served, with the same schema (no conversion): manifests and tools written for it keep working,
# with a deprecation warning, and a downgrade to a release that speaks only it keeps working.
VERSION: Final = "v1beta1"
PREVIOUS_VERSION: Final = "v1alpha1"
VERSIONS: Final = (VERSION, PREVIOUS_VERSION)
KIND: Final = "ConnectorInstance"
PLURAL: Final = "connectorinstances"
SINGULAR: Final = "connectorinstance"
SHORT_NAMES: Final = ("oci", "connector")
CATEGORY: Final = "openconnectors"
# The accounts (issue 10): the platform team's credentials, endpoint and request budget.
ACCOUNT_KIND: Final = "ConnectorAccount"
ACCOUNT_PLURAL: Final = "connectoraccounts"
ACCOUNT_SINGULAR: Final = "connectoraccount"
ACCOUNT_SHORT_NAMES: Final = ("oca",)
CLUSTER_ACCOUNT_KIND: Final = "ClusterConnectorAccount"
CLUSTER_ACCOUNT_PLURAL: Final = "clusterconnectoraccounts"
CLUSTER_ACCOUNT_SINGULAR: Final = "clusterconnectoraccount"
CLUSTER_ACCOUNT_SHORT_NAMES: Final = ("occa",)

FINALIZER: Final = f"{GROUP}/finalizer"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "open-connectors-operator"
# A referenced input Secret gets this label so that one server-side label selector finds every
# Secret the operator must watch, and memory does not grow with unrelated Secrets.
WATCH_LABEL: Final = f"{GROUP}/watch"
# Held on an input Secret while a ConnectorInstance references it (engine/secretholds.py), so
# that deleting the Secret, or its namespace, cannot strand an object that still needs it.
IN_USE_FINALIZER: Final = f"{GROUP}/in-use"
CREDENTIAL_KEYS: Final = ("userSecret", "organizationSecret")
IDENTITY_TAG_PREFIX: Final = "k8s-"
# Day-2 marks (issue 11). On a ConnectorInstance: set by users, read by the operator.
PAUSED_ANNOTATION: Final = f"{GROUP}/paused"
RECONCILE_REQUEST_ANNOTATION: Final = f"{GROUP}/reconcile-requested-at"
# Issue 18: take an instance over from an object that is gone (its cluster died) but whose
# identity tag is still on the instance. The value is the old object's UID.
TAKE_OVER_ANNOTATION: Final = f"{GROUP}/take-over-from"
# On the token Secret: written by the operator. The token digest changes exactly when the token
# does (for Reloader or a checksum annotation); the shape digest says which type, labels,
# annotations and templates the Secret was written for, so a change of those is seen without
# reading the Secret.
TOKEN_DIGEST_ANNOTATION: Final = f"{GROUP}/token-digest"
SHAPE_ANNOTATION: Final = f"{GROUP}/secret-shape"
RESERVED_PREFIX: Final = f"{GROUP}/"
