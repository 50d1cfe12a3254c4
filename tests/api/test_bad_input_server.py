"""The CustomResourceDefinition refuses malformed ConnectorInstances with a readable message: the
user's mistakes that never reach the operator (the rest of tests/integration/test_bad_input.py
moved to the in-process tier, tests/reconciler/test_bad_input.py)."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from tests.fixtures.operator import Instances
from tests.integration.support import closeio_spec

OAUTH = {
    "appCredentialsSecretRef": {"name": "app"},
    "callbackURL": "http://127.0.0.1:8765/callback",
    "authorizationSecretRef": {"name": "auth"},
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"apiURL": "ftp://example.com/elements/api-v2"}, "spec.apiURL"),
        ({"connectorKey": "CloseIO"}, "spec.connectorKey"),
        ({"deletionPolicy": "Sometimes"}, "spec.deletionPolicy"),
        ({"events": {"enabled": True, "vendorType": "webhook"}}, "callbackURL is required"),
        ({"tags": ["k8s-uid:spoofed"]}, "reserved"),
        ({"configuration": [{"key": "username"}]}, "exactly one of value and valueFrom"),
        ({"credentialsSecretRef": {}}, "spec.credentialsSecretRef.name"),
        (
            {"oauth": {**OAUTH, "refreshTokenSecretRef": {"name": "rt"}}},
            "exactly one of authorizationSecretRef",
        ),
        ({"oauth": {k: v for k, v in OAUTH.items() if k != "authorizationSecretRef"}}, "exactly one of"),
        (
            {"oauth": OAUTH, "instanceID": 7, "managementPolicy": "ObserveOnly"},
            "oauth excludes managementPolicy",
        ),
        (
            {"oauth": OAUTH, "configuration": [{"key": "oauth.api.key", "value": "x"}]},
            "oauth.* configuration keys",
        ),
        ({"oauth": {**OAUTH, "callbackURL": "javascript:alert(1)"}}, "spec.oauth.callbackURL"),
    ],
    ids=[
        "api-url-scheme",
        "connector-key-case",
        "deletion-policy",
        "webhook-without-url",
        "reserved-tag",
        "no-value",
        "no-secret-name",
        "oauth-two-grant-sources",
        "oauth-no-grant-source",
        "oauth-observed",
        "oauth-keys-in-configuration",
        "oauth-callback-scheme",
    ],
)
def test_malformed_objects_are_rejected_by_the_api_server(
    instances: Instances, override: dict[str, object], message: str
) -> None:
    """Moved from tests/integration/test_bad_input.py: what a user can get wrong that the API
    server refuses itself, with a message naming the field (the passes never see these)."""
    with pytest.raises(ApiException) as rejected:
        instances.create("bad", closeio_spec(**override))
    assert rejected.value.status == 422
    assert message in rejected.value.body
