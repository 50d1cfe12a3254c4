"""Issue 11's fields on a real API server: adoption, ObserveOnly, resyncInterval, the token
Secret's shape, and the fields that are pinned once the remote instance exists.

Each rule is shown refusing with a readable message and a valid spec accepted as written; the
pinning rule compares the spec with the stored status, so those tests write a status through the
status subresource first, as the operator does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from connector_operator.api import names
from connector_operator.api.spec import INSTANCE_ID_FIXED, OBSERVE_NEEDS_ID, parse_spec
from connector_operator.domain.tokensecret import Values, data, token_secret_spec
from tests.api.test_crd_server import MINIMAL_SPEC, create, manifest, rejection

WORKLOAD_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workload-secret" / "closeio.yaml"
TEMPLATE = {
    "includeAccountSecrets": True,
    "data": {
        "OC_AUTHORIZATION": "User {{ userSecret }}, Organization {{ organizationSecret }}, "
        "Element {{ token }}",
        "config.json": '{"baseUrl": {{ apiURL | tojson }}}',
    },
}

REJECTED = [
    pytest.param(
        {"managementPolicy": "ObserveOnly"},
        ["spec.managementPolicy", OBSERVE_NEEDS_ID],
        id="observe-without-id",
    ),
    pytest.param(
        {"managementPolicy": "Sometimes"}, ["spec.managementPolicy", "Unsupported value"], id="bad-policy"
    ),
    pytest.param(
        {"instanceID": 0}, ["spec.instanceID", "should be greater than or equal to 1"], id="id-zero"
    ),
    pytest.param({"resyncInterval": "10"}, ["spec.resyncInterval", "should match"], id="resync-no-unit"),
    pytest.param(
        {"resyncInterval": "5s"}, ["spec.resyncInterval", "between 30s and 168h"], id="resync-too-short"
    ),
    pytest.param(
        {"resyncInterval": "200h"}, ["spec.resyncInterval", "between 30s and 168h"], id="resync-too-long"
    ),
    pytest.param(
        {"tokenSecret": {"type": "kubernetes.io/service-account-token"}},
        ["spec.tokenSecret.type", "should match"],
        id="sa-token-type",
    ),
    pytest.param(
        {"tokenSecret": {"type": "helm.sh/release.v1"}},
        ["spec.tokenSecret.type", "should match"],
        id="helm-type",
    ),
    pytest.param(
        {"tokenSecret": {"type": "bad type"}}, ["spec.tokenSecret.type", "should match"], id="bad-type"
    ),
    pytest.param(
        {"tokenSecret": {"labels": {"openconnectors.io/watch": "token"}}},
        ["spec.tokenSecret.labels", "reserved for the operator's own"],
        id="reserved-label",
    ),
    pytest.param(
        {"tokenSecret": {"annotations": {"openconnectors.io/token-digest": "x"}}},
        ["spec.tokenSecret.annotations", "reserved for the operator's own"],
        id="reserved-annotation",
    ),
    pytest.param(
        {"tokenSecret": {"labels": {"a": "not a label value"}}},
        ["spec.tokenSecret.labels.a", "should match"],
        id="bad-label-value",
    ),
    pytest.param(
        {"tokenSecret": {"labels": {"-bad-": "x"}}},
        ["spec.tokenSecret.labels", "must be valid Kubernetes label keys"],
        id="bad-label-key",
    ),
    pytest.param(
        {"tokenSecret": {"template": {"data": {"token": "{{ token }}"}}}},
        ["spec.tokenSecret.template.data", "template keys must be valid Secret keys other than token"],
        id="template-key-token",
    ),
    pytest.param(
        {"tokenSecret": {"template": {"data": {"a/b": "x"}}}},
        ["spec.tokenSecret.template.data", "template keys must be valid Secret keys"],
        id="template-key-slash",
    ),
]


@pytest.mark.usefixtures("api_crds")
@pytest.mark.parametrize(("change", "fragments"), REJECTED)
def test_server_rejects_bad_day2_fields(
    custom: client.CustomObjectsApi, namespace: str, change: dict[str, Any], fragments: list[str]
) -> None:
    message = rejection(custom, namespace, {**MINIMAL_SPEC, **change})
    for fragment in fragments:
        assert fragment in message


@pytest.mark.usefixtures("api_crds")
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"instanceID": 12345}, id="adopt"),
        pytest.param({"instanceID": 12345, "managementPolicy": "ObserveOnly"}, id="observe"),
        pytest.param({"resyncInterval": "1h30m"}, id="resync"),
        pytest.param(
            {
                "tokenSecret": {
                    "name": "closeio-token",
                    "type": "servicebinding.io/open-connectors",
                    "labels": {"app.kubernetes.io/part-of": "shop", "team": "a"},
                    "annotations": {"reloader.stakater.com/match": "true"},
                    "template": TEMPLATE,
                }
            },
            id="shaped-secret",
        ),
        pytest.param(
            {"tokenSecret": {"template": {"data": {"K": "{{ token }}"}}}}, id="template-without-name"
        ),
    ],
)
def test_server_accepts_day2_fields_as_written(
    custom: client.CustomObjectsApi, namespace: str, change: dict[str, Any]
) -> None:
    spec = {**MINIMAL_SPEC, **change}
    assert create(custom, namespace, manifest(spec))["spec"] == spec


def _patch_spec(
    custom: client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any]
) -> str | None:
    """The server's refusal ("422 <body>") of a spec change, or None when it is accepted."""
    try:
        custom.patch_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"spec": spec}
        )
    except ApiException as refused:
        return f"{refused.status} {refused.body}"
    return None


@pytest.mark.usefixtures("api_crds")
def test_instance_id_is_fixed_at_creation(custom: client.CustomObjectsApi, namespace: str) -> None:
    created = create(custom, namespace, manifest({**MINIMAL_SPEC, "instanceID": 7}))
    name = created["metadata"]["name"]
    changed = _patch_spec(custom, namespace, name, {"instanceID": 8})
    assert changed is not None
    assert changed.startswith("422 ")
    assert INSTANCE_ID_FIXED in changed
    removed = _patch_spec(custom, namespace, name, {"instanceID": None})
    assert removed is not None
    assert removed.startswith("422 ")
    assert INSTANCE_ID_FIXED in removed
    plain = create(custom, namespace, manifest(MINIMAL_SPEC))
    added = _patch_spec(custom, namespace, plain["metadata"]["name"], {"instanceID": 9})
    assert added is not None
    assert added.startswith("422 ")
    assert INSTANCE_ID_FIXED in added
    assert _patch_spec(custom, namespace, name, {"instanceName": "renamed"}) is None


@pytest.mark.usefixtures("api_crds")
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"connectorKey": "hubspot"}, id="connectorKey"),
        pytest.param(
            {"apiURL": "https://api.openconnectors.eu3.ext.hana.ondemand.com/elements/api-v2"}, id="apiURL"
        ),
        pytest.param(
            {"accountRef": {"kind": "ConnectorAccount", "name": "other"}, "credentialsSecretRef": None},
            id="accountRef",
        ),
        pytest.param({"credentialsSecretRef": {"name": "another-account"}}, id="credentialsSecretRef"),
    ],
)
def test_where_the_instance_lives_is_pinned_once_it_exists(
    custom: client.CustomObjectsApi, namespace: str, change: dict[str, Any]
) -> None:
    before = create(custom, namespace, manifest(dict(MINIMAL_SPEC)))
    name = before["metadata"]["name"]
    # No remote instance yet: a typo may still be fixed.
    assert _patch_spec(custom, namespace, name, change) is None
    assert _patch_spec(custom, namespace, name, {k: MINIMAL_SPEC.get(k) for k in change}) is None
    custom.patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"status": {"instanceID": 42}}
    )
    refused = _patch_spec(custom, namespace, name, change)
    assert refused is not None
    assert refused.startswith("422 ")
    assert "connectorKey, apiURL, accountRef and credentialsSecretRef cannot change once" in refused
    # Everything else still changes, and the status subresource is not held by the rule.
    assert _patch_spec(custom, namespace, name, {"instanceName": "still-editable"}) is None
    custom.patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"status": {"instanceID": 43}}
    )


@pytest.mark.usefixtures("api_crds")
def test_adding_or_removing_the_trailing_slash_of_the_api_url_is_no_move(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    """Issue 18: the operator drops the one trailing `/` the pattern allows, so the slash is no
    change of platform: a user may add it (or remove it) once the instance exists. Another URL,
    or two slashes, are still refused."""
    api_url = "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2"
    before = create(custom, namespace, manifest({**MINIMAL_SPEC, "apiURL": api_url}))
    name = before["metadata"]["name"]
    custom.patch_namespaced_custom_object_status(
        names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"status": {"instanceID": 42}}
    )
    assert _patch_spec(custom, namespace, name, {"apiURL": api_url + "/"}) is None
    assert _patch_spec(custom, namespace, name, {"apiURL": api_url}) is None
    assert _patch_spec(custom, namespace, name, {"apiURL": api_url + "/"}) is None
    two = _patch_spec(custom, namespace, name, {"apiURL": api_url + "//"})
    assert two is not None
    assert "spec.apiURL" in two
    assert "should match" in two
    moved = _patch_spec(custom, namespace, name, {"apiURL": api_url.replace("ext.", "eu3.ext.") + "/"})
    assert moved is not None
    assert "connectorKey, apiURL, accountRef and credentialsSecretRef cannot change once" in moved
    dropped = _patch_spec(custom, namespace, name, {"apiURL": None})
    assert dropped is not None
    assert "cannot change once" in dropped


@pytest.mark.usefixtures("api_crds")
def test_the_workload_secret_example_is_accepted_as_written_and_its_templates_render(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    example = yaml.safe_load(WORKLOAD_EXAMPLE.read_text())
    created = create(custom, namespace, copy.deepcopy(example))
    assert created["spec"] == example["spec"]
    spec = parse_spec(created["spec"])
    wanted = token_secret_spec(spec)
    values = Values("tok", "42", "https://x.example/elements/api-v2", "closeio", "shop", "u", "o")
    rendered = data(wanted, values)
    assert rendered["OC_AUTHORIZATION"] == "User u, Organization o, Element tok"
    assert json.loads(rendered["config.json"]) == {
        "baseUrl": "https://x.example/elements/api-v2",
        "instanceId": 42,
        "name": "shop",
    }
