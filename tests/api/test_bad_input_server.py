"""The CustomResourceDefinition refuses malformed ConnectorInstances with a readable message: the
user's mistakes that never reach the operator (the rest of tests/integration/test_bad_input.py
moved to the in-process tier, tests/reconciler/test_bad_input.py)."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from tests.fixtures.operator import Instances
from tests.integration.support import closeio_spec


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
    ],
    ids=[
        "api-url-scheme",
        "connector-key-case",
        "deletion-policy",
        "webhook-without-url",
        "reserved-tag",
        "no-value",
        "no-secret-name",
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
