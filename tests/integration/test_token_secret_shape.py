"""A token Secret shaped for the workload (issue 11): type, labels, annotations, templated keys,
and the token-digest annotation that rolls a workload when the token changes. The operator runs
as a process against the real API server and the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector_operator.api.names import SHAPE_ANNOTATION, TOKEN_DIGEST_ANNOTATION
from tests.fixtures.operator import wait_until
from tests.integration.support import CLOSEIO_API_KEY, Env, closeio_spec, remote, secret_data

HEADER = "User {{ userSecret }}, Organization {{ organizationSecret }}, Element {{ token }}"
CONFIG = (
    '{"baseUrl": {{ apiURL | tojson }}, "instanceId": {{ instanceID }}, "name": {{ instanceName | tojson }}}'
)


def shaped(**template: Any) -> dict[str, Any]:
    return {
        "name": "crm-credentials",
        "type": "servicebinding.io/open-connectors",
        "labels": {"app.kubernetes.io/part-of": "shop"},
        "annotations": {"reloader.stakater.com/match": "true"},
        "template": {
            "includeAccountSecrets": True,
            "data": {"OC_AUTHORIZATION": HEADER, "config.json": CONFIG},
            **template,
        },
    }


def token_secret_version(env: Env, name: str) -> str:
    return str(env.core.read_namespaced_secret(name, env.namespace).metadata.resource_version)


@pytest.mark.manual_operator
def test_the_secret_has_the_header_a_config_file_and_a_digest_that_follows_the_token(env: Env) -> None:
    env.start_operator("--resync-interval", "600")
    obj = env.create_ready(instanceName='shop "crm"', tokenSecret=shaped())
    instance = remote(env.simulator, obj["status"]["instanceID"])
    secret = env.core.read_namespaced_secret("crm-credentials", env.namespace)
    data = secret_data(env.core, env.namespace, "crm-credentials")
    assert data is not None
    assert data["OC_AUTHORIZATION"] == (
        f"User {env.simulator.user_secret}, Organization {env.simulator.organization_secret}, "
        f"Element {instance['token']}"
    )
    assert json.loads(data["config.json"]) == {
        "baseUrl": env.simulator.api_url,
        "instanceId": instance["id"],
        "name": 'shop "crm"',
    }
    assert data["token"] == instance["token"]
    assert secret.type == "servicebinding.io/open-connectors"
    assert secret.metadata.labels["app.kubernetes.io/part-of"] == "shop"
    assert secret.metadata.annotations["reloader.stakater.com/match"] == "true"
    digest = secret.metadata.annotations[TOKEN_DIGEST_ANNOTATION]
    assert digest == obj["status"]["tokenDigest"]
    assert instance["token"] not in json.dumps(secret.metadata.annotations)

    # Nothing changed: a requested check makes no write.
    version = token_secret_version(env, "crm-credentials")
    env.instances.custom.patch_namespaced_custom_object(
        "openconnectors.io",
        "v1alpha1",
        env.namespace,
        "connectorinstances",
        "crm",
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": "1"}}},
    )
    wait_until(
        lambda: (env.instances.get("crm") or {})["status"].get("lastHandledReconcileAt") == "1", 10, "a check"
    )
    assert token_secret_version(env, "crm-credentials") == version

    # A new token: the data and the digest annotation follow, in one write.
    new_token = env.simulator.control.rotate_token(instance["id"])
    env.instances.custom.patch_namespaced_custom_object(
        "openconnectors.io",
        "v1alpha1",
        env.namespace,
        "connectorinstances",
        "crm",
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": "2"}}},
    )
    wait_until(
        lambda: (secret_data(env.core, env.namespace, "crm-credentials") or {}).get("token") == new_token,
        10,
        "the new token",
    )
    after = env.core.read_namespaced_secret("crm-credentials", env.namespace)
    assert after.metadata.annotations[TOKEN_DIGEST_ANNOTATION] != digest
    assert (secret_data(env.core, env.namespace, "crm-credentials") or {})["OC_AUTHORIZATION"].endswith(
        new_token
    )


def test_a_template_change_rewrites_the_keys_and_a_type_change_replaces_the_secret(env: Env) -> None:
    env.create_ready(tokenSecret=shaped())
    version = token_secret_version(env, "crm-credentials")
    template = {"includeAccountSecrets": None, "data": {"OC_AUTHORIZATION": None, "config.json": None}}
    template["data"]["TOKEN_ONLY"] = "{{ token }}"  # type: ignore[index]
    changed = env.instances.patch_spec("crm", {"tokenSecret": {"type": None, "template": template}})
    generation = changed["metadata"]["generation"]
    wait_until(
        lambda: "TOKEN_ONLY" in (secret_data(env.core, env.namespace, "crm-credentials") or {}),
        15,
        "the new template",
    )
    data = secret_data(env.core, env.namespace, "crm-credentials") or {}
    assert set(data) == {"token", "instanceID", "apiURL", "TOKEN_ONLY"}  # the old keys are gone
    assert data["TOKEN_ONLY"] == data["token"]
    secret = env.core.read_namespaced_secret("crm-credentials", env.namespace)
    assert secret.type == "Opaque"
    assert token_secret_version(env, "crm-credentials") != version
    assert SHAPE_ANNOTATION in secret.metadata.annotations
    wait_until(
        lambda: (env.instances.get("crm") or {})["status"].get("observedGeneration") == generation,
        10,
        "the generation handled",
    )
    assert env.instances.condition("crm", "Ready")["status"] == "True"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        pytest.param({"K": "{% for x in token %}{{ x }}{% endfor %}"}, "is not allowed", id="loop"),
        pytest.param({"K": "{{ token.__class__ }}"}, "is not allowed", id="attribute"),
        pytest.param({"K": "{{ userSecret }}"}, "includeAccountSecrets: true", id="account-without-flag"),
        pytest.param({"K": "{{ token "}, "K", id="syntax"),
    ],
)
def test_a_template_error_stalls_with_invalid_spec_and_nothing_is_called(
    env: Env, template: dict[str, str], fragment: str
) -> None:
    env.ready_inputs()
    env.instances.create("bad", closeio_spec(tokenSecret={"template": {"data": template}}))
    stalled = env.instances.wait_condition("bad", "Stalled", reason="InvalidSpec")
    assert "spec.tokenSecret.template" in stalled["message"]
    assert fragment in stalled["message"]
    assert env.simulator.control.counters().get("POST /instances", 0) == 0
    assert CLOSEIO_API_KEY not in stalled["message"]
    # Fixed, it goes on.
    env.instances.patch_spec("bad", {"tokenSecret": {"template": {"data": {"K": "{{ token }}"}}}})
    env.instances.wait_ready("bad")
