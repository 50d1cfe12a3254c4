"""A token Secret shaped for the workload (issue 11): type, labels, annotations, templated keys,
and the token-digest annotation that rolls a workload when the token changes. Moved here from
tests/integration: the operator's passes run in-process, pass by pass, against the real API server
and the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector_operator.api.names import SHAPE_ANNOTATION, TOKEN_DIGEST_ANNOTATION
from connector_operator.domain import sandbox
from connector_operator.kube import digestkey
from tests.integration.support import (
    CLOSEIO_API_KEY,
    closeio_spec,
    instance_spec,
    ready_inputs,
    remote,
    secret_data,
)
from tests.reconciler.kopfstandin import Operator

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


def token_secret_version(op: Operator, name: str) -> str:
    return str(op.core.read_namespaced_secret(name, op.namespace).metadata.resource_version)


def request_check(op: Operator, name: str, at: str) -> None:
    """`openconnectors.io/reconcile-requested-at`: a check of the object now."""
    op.instances.custom.patch_namespaced_custom_object(
        "openconnectors.io",
        "v1beta1",
        op.namespace,
        "connectorinstances",
        name,
        {"metadata": {"annotations": {"openconnectors.io/reconcile-requested-at": at}}},
    )


@pytest.mark.settings(resync_interval=600)  # no periodic check: the requested ones only
async def test_the_secret_has_the_header_a_config_file_and_a_digest_that_follows_the_token(
    operator: Operator,
) -> None:
    op = operator
    obj = await op.create_ready(instanceName='shop "crm"', tokenSecret=shaped())
    instance = remote(op.simulator, obj["status"]["instanceID"])
    secret = op.core.read_namespaced_secret("crm-credentials", op.namespace)
    data = secret_data(op.core, op.namespace, "crm-credentials")
    assert data is not None
    assert data["OC_AUTHORIZATION"] == (
        f"User {op.simulator.user_secret}, Organization {op.simulator.organization_secret}, "
        f"Element {instance['token']}"
    )
    assert json.loads(data["config.json"]) == {
        "baseUrl": op.simulator.api_url,
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
    version = token_secret_version(op, "crm-credentials")
    request_check(op, "crm", "1")
    await op.until(
        "crm", lambda obj: obj["status"].get("lastHandledReconcileAt") == "1", passes=1, what="a check"
    )
    assert token_secret_version(op, "crm-credentials") == version

    # A new token: the data and the digest annotation follow, in one write.
    new_token = op.simulator.control.rotate_token(instance["id"])
    request_check(op, "crm", "2")
    await op.until(
        "crm",
        lambda _: (secret_data(op.core, op.namespace, "crm-credentials") or {}).get("token") == new_token,
        passes=1,
        what="the new token",
    )
    after = op.core.read_namespaced_secret("crm-credentials", op.namespace)
    assert after.metadata.annotations[TOKEN_DIGEST_ANNOTATION] != digest
    assert (secret_data(op.core, op.namespace, "crm-credentials") or {})["OC_AUTHORIZATION"].endswith(
        new_token
    )


async def test_a_template_change_rewrites_the_keys_and_a_type_change_replaces_the_secret(
    operator: Operator,
) -> None:
    op = operator
    await op.create_ready(tokenSecret=shaped())
    version = token_secret_version(op, "crm-credentials")
    data: dict[str, str | None] = {"OC_AUTHORIZATION": None, "config.json": None, "TOKEN_ONLY": "{{ token }}"}
    template = {"includeAccountSecrets": None, "data": data}
    changed = op.instances.patch_spec("crm", {"tokenSecret": {"type": None, "template": template}})
    generation = changed["metadata"]["generation"]
    await op.until(
        "crm",
        lambda _: "TOKEN_ONLY" in (secret_data(op.core, op.namespace, "crm-credentials") or {}),
        passes=1,
        what="the new template",
    )
    written = secret_data(op.core, op.namespace, "crm-credentials") or {}
    assert set(written) == {"token", "instanceID", "apiURL", "TOKEN_ONLY"}  # the old keys are gone
    assert written["TOKEN_ONLY"] == written["token"]
    secret = op.core.read_namespaced_secret("crm-credentials", op.namespace)
    assert secret.type == "Opaque"
    assert token_secret_version(op, "crm-credentials") != version
    assert SHAPE_ANNOTATION in secret.metadata.annotations
    obj = op.instances.get("crm")
    assert obj is not None
    assert obj["status"].get("observedGeneration") == generation  # the generation handled, same pass
    assert op.instances.condition("crm", "Ready")["status"] == "True"


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        pytest.param({"K": "{% for x in token %}{{ x }}{% endfor %}"}, "is not allowed", id="loop"),
        pytest.param({"K": "{{ token.__class__ }}"}, "is not allowed", id="attribute"),
        pytest.param({"K": "{{ userSecret }}"}, "includeAccountSecrets: true", id="account-without-flag"),
        pytest.param({"K": "{{ token "}, "K", id="syntax"),
    ],
)
async def test_a_template_error_stalls_with_invalid_spec_and_nothing_is_called(
    operator: Operator, template: dict[str, str], fragment: str
) -> None:
    op = operator
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("bad", closeio_spec(tokenSecret={"template": {"data": template}}))
    stalled = await op.condition("bad", "Stalled", "True", reason="InvalidSpec", passes=1)
    assert "spec.tokenSecret.template" in stalled["message"]
    assert fragment in stalled["message"]
    assert op.simulator.control.counters().get("POST /instances", 0) == 0
    assert CLOSEIO_API_KEY not in stalled["message"]
    # Fixed, it goes on.
    op.instances.patch_spec("bad", {"tokenSecret": {"template": {"data": {"K": "{{ token }}"}}}})
    await op.ready("bad", passes=1)


async def test_the_operators_digest_key_is_never_a_token_secret(operator: Operator) -> None:
    """tenant-findings N14: the digest key is managed by the operator and has no owner. An object
    in the operator's namespace naming it as its token Secret had a Ready pass rewrite it (its
    `key` gone: the next start refuses to run). Now it is someone else's Secret: SecretConflict."""
    op = operator
    assert op.runtime.kube is not None
    name = op.runtime.settings.digest_key_secret
    key = await digestkey.load_or_create(op.runtime.kube, op.namespace, name)
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(tokenSecret={"name": name}))
    condition = await op.condition("crm", "Stalled", "True", reason="SecretConflict", passes=1)
    assert name in condition["message"]
    assert await digestkey.load_or_create(op.runtime.kube, op.namespace, name) == key
    assert set(op.core.read_namespaced_secret(name, op.namespace).data or {}) == {"key"}  # binary


async def test_an_object_its_account_refuses_compiles_no_template(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tenant-findings N2: templates were compiled at every pass before the account and the host
    were checked, so a refused object (passing again at every resync, or on the reconcile
    annotation) cost the shared event loop a compile each time. Now they are compiled only once
    the pass may go on; a template error still stalls it before any Secret is read or call made."""
    op = operator
    compiled: list[int] = []
    real = sandbox.compile_templates

    def counting(data: Any, **kwargs: Any) -> Any:
        compiled.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(sandbox, "compile_templates", counting)
    template = {"data": {"H": "User {{ token }}"}}
    account = {"kind": "ClusterConnectorAccount", "name": "none-such"}
    op.instances.create("refused", instance_spec(accountRef=account, tokenSecret={"template": template}))
    await op.condition("refused", "Reconciling", "True", reason="AccountNotFound", passes=1)
    await op.run("refused")
    assert compiled == []
    ready_inputs(op.core, op.namespace, op.simulator)
    op.instances.create("crm", closeio_spec(tokenSecret={"template": template}))
    await op.ready("crm", passes=1)
    assert compiled == [1]
    assert op.simulator.control.counters().get("POST /instances") == 1
