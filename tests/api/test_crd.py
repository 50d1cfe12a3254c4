"""The generated CustomResourceDefinitions, checked without a cluster.

Covers, for each of the three resources (ConnectorInstance, ConnectorAccount,
ClusterConnectorAccount): the committed files in `crds/` are exactly what
`connector_operator.api.crd.render()` produces and there are no others; the openAPIV3Schema is
structural and documented (every property at every depth described, no `default:` in spec, no
`$ref`, `anyOf`, `title` or `additionalProperties` beside `properties`, OpenAPI 3.0's boolean
`exclusiveMinimum`); printer columns, short names, scope, category and the status subresource;
the example manifests round-trip through the spec models and validate against the schemas; and
the spec models refuse what the CRD's CEL rules refuse (accountRef beside credentialsSecretRef
or apiURL). The API server's own checks (CEL rules, pruning) are in test_crd_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from connector_operator.api import crd, names
from connector_operator.api.account import parse_account_spec
from connector_operator.api.spec import ACCOUNT_EXCLUSIVE, parse_spec

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds"
EXAMPLE = ROOT / "examples" / "closeio-connectorinstance.yaml"

# Schema keywords whose values are schemas, or maps of names to schemas.
SCHEMA_VALUED = ("items", "not", "additionalProperties")
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path, e.g. `.spec.configuration[].valueFrom`."""
    yield path, schema
    for name, child in (schema.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    for keyword in SCHEMA_VALUED:
        if isinstance(schema.get(keyword), dict):
            yield from walk(schema[keyword], f"{path}[]" if keyword == "items" else f"{path}<{keyword}>")
    for keyword in SCHEMA_LISTS:
        for index, child in enumerate(schema.get(keyword) or []):
            yield from walk(child, f"{path}<{keyword}{index}>")


def properties(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named property at every depth, skipping subtrees that are not ours to document."""
    for node_path, node in walk(schema, path):
        for name, child in (node.get("properties") or {}).items():
            yield f"{node_path}.{name}", child


@pytest.fixture(scope="module", params=crd.RESOURCES, ids=lambda r: r.kind)
def resource(request: pytest.FixtureRequest) -> crd.Resource:
    chosen: crd.Resource = request.param
    return chosen


@pytest.fixture(scope="module")
def definition(resource: crd.Resource) -> dict[str, Any]:
    return crd.definition(resource)


@pytest.fixture(scope="module")
def version(definition: dict[str, Any]) -> dict[str, Any]:
    """The storage version (v1beta1); the other served one has the same schema."""
    (storage,) = [v for v in definition["spec"]["versions"] if v["storage"]]
    return storage


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> dict[str, Any]:
    return version["schema"]["openAPIV3Schema"]


def test_committed_crd_is_the_rendered_one(resource: crd.Resource) -> None:
    committed = COMMITTED / resource.filename
    assert committed.exists(), f"{committed.relative_to(ROOT)} is missing: run `make crds`"
    assert committed.read_text() == crd.render(resource), (
        f"{committed.relative_to(ROOT)} is out of date with connector_operator.api: run `make crds`"
    )


def test_crds_holds_exactly_the_generated_files() -> None:
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(r.filename for r in crd.RESOURCES)
    assert [r.kind for r in crd.RESOURCES] == [names.KIND, names.ACCOUNT_KIND, names.CLUSTER_ACCOUNT_KIND]


def test_rendered_yaml_is_the_definition(resource: crd.Resource, definition: dict[str, Any]) -> None:
    assert yaml.safe_load(crd.render(resource)) == definition


def test_the_module_prints_the_instance_crd_by_default() -> None:
    assert crd.render() == crd.render(crd.INSTANCE)
    assert crd.definition()["spec"]["names"]["kind"] == names.KIND


def test_every_property_at_every_depth_has_a_description(
    resource: crd.Resource, schema: dict[str, Any]
) -> None:
    undocumented = [
        path
        for path, prop in properties(schema)
        if path != ".metadata"
        and not path.startswith(".status.kopf.")
        and not str(prop.get("description") or "").strip()
    ]
    assert undocumented == []
    # The walk reaches deep properties, so the check above is not vacuous.
    paths = {p.replace("[]", "") for p, _ in properties(schema)}
    deep = {
        names.KIND: ".spec.configuration.valueFrom.secretKeyRef.key",
        names.ACCOUNT_KIND: ".spec.requestBudget.maxInFlight",
        names.CLUSTER_ACCOUNT_KIND: ".spec.namespaceSelector.matchExpressions.values",
    }
    assert {deep[resource.kind], ".status.conditions.lastTransitionTime"} <= paths


def test_spec_has_no_schema_defaults(schema: dict[str, Any]) -> None:
    defaulted = [path for path, node in walk(schema["properties"]["spec"], ".spec") if "default" in node]
    assert defaulted == []


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    problems = []
    for path, node in walk(schema):
        for keyword in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "title"):
            if keyword in node:
                problems.append(f"{path or '.'}: {keyword}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path or '.'}: additionalProperties beside properties")
        if (
            path not in ("", ".metadata")
            and "type" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            problems.append(f"{path}: no type")
        if "exclusiveMinimum" in node and not (
            node["exclusiveMinimum"] is True and isinstance(node.get("minimum"), int | float)
        ):
            problems.append(f"{path}: exclusiveMinimum must be OpenAPI 3.0's flag beside a minimum")
    assert problems == []


def test_kopf_bookkeeping_is_kept_unpruned(schema: dict[str, Any]) -> None:
    kopf = schema["properties"]["status"]["properties"]["kopf"]
    assert kopf["type"] == "object"
    assert kopf["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_columns() -> None:
    columns = crd.definition(crd.INSTANCE)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Ready", "Reason", "Instance ID", "Connector", "Account", "Age"]
    paths = {c["name"]: c["jsonPath"] for c in columns}
    assert paths["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert paths["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert paths["Instance ID"] == ".status.instanceID"
    assert paths["Connector"] == ".spec.connectorKey"
    assert paths["Account"] == ".spec.accountRef.name"
    assert paths["Age"] == ".metadata.creationTimestamp"


@pytest.mark.parametrize("resource", [crd.ACCOUNT, crd.CLUSTER_ACCOUNT], ids=lambda r: r.kind)
def test_account_printer_columns_show_ready_instances_budget_and_circuit(resource: crd.Resource) -> None:
    columns = crd.definition(resource)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {c["name"]: c["jsonPath"] for c in columns} == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Reason": '.status.conditions[?(@.type=="Ready")].reason',
        "Instances": ".status.instances",
        "Budget": ".spec.requestBudget.requestsPerSecond",
        "Circuit": ".status.circuit.state",
        "Age": ".metadata.creationTimestamp",
    }


NAMES = {
    names.KIND: ("connectorinstances", "Namespaced", names.SHORT_NAMES),
    names.ACCOUNT_KIND: ("connectoraccounts", "Namespaced", names.ACCOUNT_SHORT_NAMES),
    names.CLUSTER_ACCOUNT_KIND: ("clusterconnectoraccounts", "Cluster", names.CLUSTER_ACCOUNT_SHORT_NAMES),
}


def test_names_short_names_and_category(resource: crd.Resource, definition: dict[str, Any]) -> None:
    spec = definition["spec"]
    plural, scope, short_names = NAMES[resource.kind]
    assert definition["metadata"]["name"] == f"{plural}.openconnectors.io"
    assert (spec["group"], spec["scope"]) == ("openconnectors.io", scope)
    assert spec["names"]["kind"] == resource.kind
    assert spec["names"]["plural"] == plural
    assert set(spec["names"]["shortNames"]) == set(short_names)
    assert spec["names"]["shortNames"]
    assert spec["names"]["categories"] == ["openconnectors"]


def test_short_names_are_distinct_across_the_resources() -> None:
    every = [n for r in crd.RESOURCES for n in r.short_names]
    assert len(every) == len(set(every))


def test_v1beta1_is_stored_and_v1alpha1_still_served_with_the_same_schema(
    definition: dict[str, Any], version: dict[str, Any]
) -> None:
    assert (version["name"], version["served"], version["storage"]) == ("v1beta1", True, True)
    assert version["subresources"] == {"status": {}}
    beta, alpha = definition["spec"]["versions"]
    assert (alpha["name"], alpha["served"], alpha["storage"], alpha["deprecated"]) == (
        "v1alpha1",
        True,
        False,
        True,
    )
    assert "use openconnectors.io/v1beta1" in alpha["deprecationWarning"]
    # conversion None: the API server changes only apiVersion, so the versions must not differ.
    same = ("schema", "subresources", "additionalPrinterColumns")
    assert {k: alpha[k] for k in same} == {k: beta[k] for k in same}
    assert "conversion" not in definition["spec"]


def load_example() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def test_example_round_trips_through_the_spec_model() -> None:
    raw = load_example()["spec"]
    spec = parse_spec(raw)
    assert spec.model_dump(mode="json", by_alias=True, exclude_none=True) == raw
    assert parse_spec(spec.model_dump(mode="json", by_alias=True, exclude_none=True)) == spec


def test_example_validates_against_the_schema() -> None:
    schema = crd.openapi_schema(crd.INSTANCE)
    example = load_example()
    jsonschema.validate(example, schema)
    broken = {**example, "spec": {**example["spec"], "deletionPolicy": "Maybe"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


ACCOUNT_REF = {"kind": "ClusterConnectorAccount", "name": "shared"}
API_URL = "https://api.openconnectors.ext.hana.ondemand.com/elements/api-v2"


@pytest.mark.parametrize(
    "own",
    [
        pytest.param({"credentialsSecretRef": {"name": "account"}}, id="credentialsSecretRef"),
        pytest.param({"apiURL": API_URL}, id="apiURL"),
    ],
)
def test_the_spec_model_refuses_accountRef_beside_own_credentials_as_the_crd_does(
    own: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError, match=ACCOUNT_EXCLUSIVE):
        parse_spec({"connectorKey": "closeio", "accountRef": ACCOUNT_REF, **own})
    # The same message as the CEL rule's, so that both read alike.
    rules = crd.openapi_schema(crd.INSTANCE)["properties"]["spec"]["x-kubernetes-validations"]
    assert ACCOUNT_EXCLUSIVE in [r["message"] for r in rules]


def test_an_instance_may_name_an_account_its_own_secret_or_neither() -> None:
    by_account = parse_spec({"connectorKey": "closeio", "accountRef": ACCOUNT_REF})
    assert by_account.account_ref is not None
    assert by_account.account_ref.kind == names.CLUSTER_ACCOUNT_KIND
    assert by_account.credentials_secret_ref is None
    neither = parse_spec({"connectorKey": "closeio"})  # the operator's --default-account decides
    assert (neither.account_ref, neither.credentials_secret_ref) == (None, None)


def test_account_specs_are_parsed_by_kind() -> None:
    ref = {"name": "oc-account", "namespace": "open-connectors-operator"}
    cluster = parse_account_spec(names.CLUSTER_ACCOUNT_KIND, {"credentialsSecretRef": ref})
    assert cluster.credentials_secret_ref.name == "oc-account"
    # The namespaced kind's Secret is in the account's own namespace: no namespace field at all.
    with pytest.raises(ValidationError, match="namespace"):
        parse_account_spec(names.ACCOUNT_KIND, {"credentialsSecretRef": ref})
    with pytest.raises(ValidationError, match="namespace"):
        parse_account_spec(names.CLUSTER_ACCOUNT_KIND, {"credentialsSecretRef": {"name": "oc-account"}})
    with pytest.raises(ValueError, match="not an account kind"):
        parse_account_spec(names.KIND, {"credentialsSecretRef": {"name": "oc-account"}})


ACCOUNT_EXAMPLES = ROOT / "examples" / "accounts"


@pytest.mark.parametrize("path", sorted(ACCOUNT_EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_account_examples_round_trip_and_validate_against_the_schemas(path: Path) -> None:
    ours = [d for d in yaml.safe_load_all(path.read_text()) if d and d["apiVersion"].startswith(names.GROUP)]
    assert ours
    schemas = {r.kind: crd.openapi_schema(r) for r in crd.RESOURCES}
    for obj in ours:
        # Draft 4: OpenAPI 3.0's boolean exclusiveMinimum, as the CRD states it.
        jsonschema.Draft4Validator(schemas[obj["kind"]]).validate(obj)
        parsed = (
            parse_spec(obj["spec"])
            if obj["kind"] == names.KIND
            else parse_account_spec(obj["kind"], obj["spec"])
        )
        assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == obj["spec"]


def test_a_budget_out_of_bounds_fails_the_schema_as_the_server_would() -> None:
    schema = crd.openapi_schema(crd.CLUSTER_ACCOUNT)
    spec = {
        "credentialsSecretRef": {"name": "a", "namespace": "b"},
        "requestBudget": {"requestsPerSecond": 0, "burst": 1, "maxInFlight": 1},
    }
    with pytest.raises(jsonschema.ValidationError, match="less than or equal to the minimum of 0"):
        jsonschema.Draft4Validator(schema).validate({"spec": spec})
