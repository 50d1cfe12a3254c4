"""The generated CustomResourceDefinition, checked without a cluster.

Covers: the committed `crds/` file is exactly what `connector_operator.api.crd.render()` produces;
the openAPIV3Schema is structural and documented (every property at every depth described, no
`default:` in spec, no `$ref`, `anyOf`, `title` or `additionalProperties` beside `properties`);
printer columns, short names, category and the status subresource; and the example manifest
round-trips through `parse_spec` and validates against the schema. The API server's own checks
(CEL rules, pruning) are in test_crd_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from connector_operator.api import crd, names
from connector_operator.api.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "openconnectors.io_connectorinstances.yaml"
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


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return crd.definition()


@pytest.fixture(scope="module")
def version(definition: dict[str, Any]) -> dict[str, Any]:
    (only,) = definition["spec"]["versions"]
    return only


@pytest.fixture(scope="module")
def schema(version: dict[str, Any]) -> dict[str, Any]:
    return version["schema"]["openAPIV3Schema"]


def test_committed_crd_is_the_rendered_one() -> None:
    committed = COMMITTED.read_text()
    assert committed == crd.render(), (
        f"{COMMITTED.relative_to(ROOT)} is out of date with connector_operator.api: run `make crds`"
    )


def test_rendered_yaml_is_the_definition(definition: dict[str, Any]) -> None:
    assert yaml.safe_load(crd.render()) == definition


def test_every_property_at_every_depth_has_a_description(schema: dict[str, Any]) -> None:
    undocumented = [
        path
        for path, prop in properties(schema)
        if path != ".metadata"
        and not path.startswith(".status.kopf.")
        and not str(prop.get("description") or "").strip()
    ]
    assert undocumented == []
    # The walk reaches deep properties, so the check above is not vacuous.
    paths = {path for path, _ in properties(schema)}
    assert {".spec.configuration.valueFrom.secretKeyRef.key", ".status.conditions.lastTransitionTime"} <= {
        p.replace("[]", "") for p in paths
    }


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
    assert problems == []


def test_kopf_bookkeeping_is_kept_unpruned(schema: dict[str, Any]) -> None:
    kopf = schema["properties"]["status"]["properties"]["kopf"]
    assert kopf["type"] == "object"
    assert kopf["x-kubernetes-preserve-unknown-fields"] is True


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = version["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Ready", "Reason", "Instance ID", "Connector", "Age"]
    paths = {c["name"]: c["jsonPath"] for c in columns}
    assert paths["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert paths["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert paths["Instance ID"] == ".status.instanceID"
    assert paths["Connector"] == ".spec.connectorKey"
    assert paths["Age"] == ".metadata.creationTimestamp"


def test_names_short_names_and_category(definition: dict[str, Any]) -> None:
    spec = definition["spec"]
    assert definition["metadata"]["name"] == "connectorinstances.openconnectors.io"
    assert (spec["group"], spec["scope"]) == ("openconnectors.io", "Namespaced")
    assert spec["names"]["kind"] == "ConnectorInstance"
    assert spec["names"]["plural"] == "connectorinstances"
    assert set(spec["names"]["shortNames"]) == set(names.SHORT_NAMES)
    assert spec["names"]["shortNames"]
    assert spec["names"]["categories"] == ["openconnectors"]


def test_one_served_storage_version_with_status_subresource(version: dict[str, Any]) -> None:
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def load_example() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def test_example_round_trips_through_the_spec_model() -> None:
    raw = load_example()["spec"]
    spec = parse_spec(raw)
    assert spec.model_dump(mode="json", by_alias=True, exclude_none=True) == raw
    assert parse_spec(spec.model_dump(mode="json", by_alias=True, exclude_none=True)) == spec


def test_example_validates_against_the_schema(schema: dict[str, Any]) -> None:
    example = load_example()
    jsonschema.validate(example, schema)
    broken = {**example, "spec": {**example["spec"], "deletionPolicy": "Maybe"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
