"""Issue 11's pure parts: drift and the dry run, the pinned account, what a read Secret keeps.

Real objects of the operator (spec model, desired request, RemotePass's comparisons, SecretView);
nothing here calls the platform or the API server (tests/integration/test_day2.py does).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any, cast

from connector_operator.api.spec import parse_spec
from connector_operator.domain.desired import Keyed, desired_instance
from connector_operator.domain.drift import MASK, differences, planned_action
from connector_operator.domain.transition import Effective, Facts, parse_status
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.handlers.secrets import trim_instance
from connector_operator.kube.secrets import SecretView
from connector_operator.openconnectors.client import Credentials, Instance
from connector_operator.reconciler.reconcile import _moved
from connector_operator.reconciler.remote import RemotePass
from tests.fixtures.runtime import build_runtime

UID = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
SPEC = {
    "connectorKey": "closeio",
    "credentialsSecretRef": {"name": "account"},
    "tags": ["crm"],
    "configuration": [{"key": "pagination.max", "value": "50"}],
}


def desired(**spec: Any) -> Any:
    parsed = parse_spec({**SPEC, **spec})
    configuration = {e.key: e.value for e in parsed.configuration or [] if e.value is not None}
    return desired_instance(parsed, namespace="sales", name="crm", uid=UID, configuration=configuration)


def test_differences_name_the_spec_fields_and_skip_what_cannot_be_compared() -> None:
    wanted = desired()
    same = differences(wanted, wanted.name, reversed(wanted.tags), {"pagination.max": "50", "x": "1"})
    assert same == []
    drifted = differences(wanted, "renamed", ["crm"], {"pagination.max": "10"})
    assert drifted == ["instanceName", "tags", "configuration.pagination.max"]
    # A masked value, or a key the platform does not list, is never drift.
    assert differences(wanted, wanted.name, wanted.tags, {"pagination.max": MASK}) == []
    assert differences(wanted, wanted.name, wanted.tags, {}) == []
    assert planned_action([]) == "None"
    assert planned_action(drifted) == "Update: instanceName, tags, configuration.pagination.max"


def remote_pass(spec: dict[str, Any]) -> RemotePass:
    parsed = parse_spec(spec)
    configuration = {e.key: e.value for e in parsed.configuration or [] if e.value is not None}
    return RemotePass(
        rt=build_runtime(),
        target=Target("sales", "crm", UID, 1, spec),
        spec=parsed,
        state=ObjectState(status=parse_status({})),
        cache={},
        api_url="https://api.example/elements/api-v2",
        credentials=Credentials("u", "o"),
        desired=desired_instance(parsed, namespace="sales", name="crm", uid=UID, configuration=configuration),
        keyed=Keyed(b"k" * 32, UID),
        digest="d",
        attempt="a",
        facts=Facts(),
    )


def test_the_dry_run_never_compares_configuration_values() -> None:
    # Finding of the hostile review: a plan that followed her guesses of values she cannot read
    # would tell an observer which guess was right. Full would send the configuration anyway.
    observer = remote_pass({**SPEC, "instanceID": 7, "managementPolicy": "ObserveOnly"})
    name, tags = observer.desired.name, observer.desired.tags
    right = Instance(7, "tok", name=name, tags=tags, configuration=(("pagination.max", "50"),))
    wrong = Instance(7, "tok", name=name, tags=tags, configuration=(("pagination.max", "49"),))
    assert observer._plan(right) == observer._plan(wrong) == "Update: configuration"
    bare = remote_pass({"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}, "instanceID": 7,
                        "managementPolicy": "ObserveOnly"})  # fmt: skip
    assert bare._plan(Instance(7, "tok", name="ui-made", tags=())) == "Update: instanceName, tags"


def test_fields_the_platform_rewrites_are_not_drift_for_the_same_request() -> None:
    full = remote_pass(SPEC)
    stripped = Instance(7, "tok", name="sales-crm-stripped", tags=full.desired.tags)
    assert full._drift(stripped) == ["instanceName"]
    full.state.normalized = {"d": frozenset({"instanceName"})}
    assert full._drift(stripped) == []
    full.digest = "another request"  # a new spec is compared in full again
    assert full._drift(stripped) == ["instanceName"]


def effective(api_url: str, account: str | None) -> Effective:
    return Effective(api_url, "sales-crm", "crm-token", "Delete", account)


def test_the_account_an_instance_belongs_to_is_pinned() -> None:
    spec = parse_spec(SPEC)
    state = ObjectState(
        status=parse_status(
            {
                "instanceID": 7,
                "apiURL": "https://a/elements/api-v2",
                "account": "ClusterConnectorAccount/shared",
            }
        )
    )
    assert (
        _moved(state, spec, effective("https://a/elements/api-v2", "ClusterConnectorAccount/shared")) is None
    )
    moved = _moved(state, spec, effective("https://a/elements/api-v2", "Secret/account"))
    assert moved is not None
    assert "from ClusterConnectorAccount/shared to Secret/account" in moved
    platform = _moved(state, spec, effective("https://b/elements/api-v2", "ClusterConnectorAccount/shared"))
    assert platform is not None
    assert "platform URL changed" in platform
    # Status from before the field existed says nothing: recorded, not refused.
    old = ObjectState(status=parse_status({"instanceID": 7, "apiURL": "https://a/elements/api-v2"}))
    assert _moved(old, spec, effective("https://a/elements/api-v2", "Secret/account")) is None
    # No instance yet: anything may change.
    assert _moved(ObjectState(status=parse_status({})), spec, effective("https://b", "Secret/x")) is None


def test_a_read_input_secret_keeps_no_labels_or_annotations() -> None:
    raw = {
        "metadata": {
            "name": "input",
            "namespace": "sales",
            "labels": {"a": "b" * 63},
            "annotations": {"big": "x" * 250_000},
        },
        "data": {"k": base64.b64encode(b"v").decode()},
    }
    view = SecretView.from_raw(raw)
    assert (dict(view.all_labels), dict(view.annotations)) == ({}, {})
    assert view.data == {"k": "v"}
    raw["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "open-connectors-operator"}
    raw["metadata"]["annotations"] = {"reloader": "true"}
    ours = SecretView.from_raw(raw)
    assert dict(ours.annotations) == {"reloader": "true"}


def test_jinja_is_imported_only_for_a_spec_with_a_template() -> None:
    # 9 MiB of RSS (issue 13's memory targets): an operator whose objects have no template does
    # not pay for the renderer.
    probe = (
        "import sys\n"
        "import connector_operator.handlers.setup, connector_operator.handlers.instances\n"
        "from connector_operator.api.spec import parse_spec\n"
        "from connector_operator.domain.tokensecret import token_secret_spec\n"
        "token_secret_spec(parse_spec({'connectorKey': 'closeio', 'tokenSecret': {'labels': {'a': 'b'}}}))\n"
        "before = 'jinja2' in sys.modules\n"
        "token_secret_spec(parse_spec({'connectorKey': 'closeio', "
        "'tokenSecret': {'template': {'data': {'K': '{{ token }}'}}}}))\n"
        "print(before, 'jinja2' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_what_kopf_keeps_of_an_instance_loses_managed_fields_and_kubectls_copy() -> None:
    # Issue 13 (memory per object at rest): kopf keeps the latest body of every object.
    raw: dict[str, Any] = {
        "metadata": {
            "name": "crm",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 10_000 + "}",
                "openconnectors.io/paused": "true",
            },
        },
        "spec": SPEC,
    }
    trim_instance(cast(Any, raw))
    assert "managedFields" not in raw["metadata"]
    assert raw["metadata"]["annotations"] == {"openconnectors.io/paused": "true"}  # what we read stays
    assert raw["spec"] == SPEC


def test_the_platform_s_configuration_is_not_kept_between_passes() -> None:
    # Bounded retention: a check compares it at once; what the platform sent (up to an answer's
    # 5 MiB) is not held per object until the next check.
    full = remote_pass(SPEC)
    full._remember(Instance(7, "tok", configuration=(("blob", "x" * 1_000_000),)))
    assert full.state.instance is not None
    assert full.state.instance.configuration == ()
    assert full.state.instance.token == "tok"
