"""The CustomResourceDefinition, generated from the pydantic models.

pydantic emits JSON Schema with `$ref`s, `anyOf` for optionals and titles; a Kubernetes
structural schema wants everything inline, nullable-free optionals (absence is optional) and no
`additionalProperties` beside `properties`. `structural()` does that translation, so the models
stay the single source of truth. `python -m connector_operator.api.crd` prints the YAML that
`make crds` commits to `crds/`, and a test fails when the two differ.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from connector_operator.api import names
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.api.status import ConnectorInstanceStatus

Schema = dict[str, Any]

KOPF_STATUS_FIELD = "kopf"


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **extra}, defs)
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node['anyOf']}")
        merged = {**_inline(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}
        return _inline(merged, defs)
    result: Schema = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "default":
            continue  # no schema defaults: the API server would write them, and GitOps tools see drift
        if key == "additionalProperties" and "properties" in node:
            continue  # mutually exclusive with properties; unknown fields are pruned anyway
        if key == "properties":
            result[key] = {name: _inline(prop, defs) for name, prop in value.items()}
        else:
            result[key] = _inline(value, defs)
    return result


def structural(model: type[Any]) -> Schema:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    inlined: Schema = _inline(schema, defs)
    return inlined


def openapi_schema() -> Schema:
    spec = structural(ConnectorInstanceSpec)
    spec["description"] = "Desired state of the connector instance on SAP Open Connectors."
    status = structural(ConnectorInstanceStatus)
    status["description"] = "Observed state, written by the operator only."
    # The one default in the schema, and not one users write: without it a new object has no
    # status at all until the operator's first write, and kstatus (Flux) reads that as Current.
    # observedGeneration 0 < generation 1 reads as InProgress. GitOps tools do not diff status.
    status["default"] = {"observedGeneration": 0}
    status["properties"][KOPF_STATUS_FIELD] = {
        "type": "object",
        "description": "Bookkeeping of the kopf framework (handler progress). Not an API; do not rely on it.",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    return {
        "type": "object",
        "description": "A connector instance on SAP Open Connectors, managed from Kubernetes. The operator "
        "creates, updates and deletes the remote instance and writes its token into a Secret.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this representation."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def _condition_column(name: str, field: str, description: str) -> Schema:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
        "description": description,
    }


def definition() -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{names.PLURAL}.{names.GROUP}",
            "labels": {"app.kubernetes.io/name": "open-connectors-operator"},
        },
        "spec": {
            "group": names.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": names.KIND,
                "listKind": f"{names.KIND}List",
                "plural": names.PLURAL,
                "singular": names.SINGULAR,
                "shortNames": list(names.SHORT_NAMES),
                "categories": [names.CATEGORY],
            },
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _condition_column("Ready", "status", "Whether the instance is ready for use."),
                        _condition_column("Reason", "reason", "Why it is, or is not, ready."),
                        {
                            "name": "Instance ID",
                            "type": "integer",
                            "jsonPath": ".status.instanceID",
                            "description": "ID of the remote instance.",
                        },
                        {
                            "name": "Connector",
                            "type": "string",
                            "jsonPath": ".spec.connectorKey",
                            "description": "Connector key.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated from connector_operator.api by `make crds`. Do not edit.\n"
    return header + yaml.safe_dump(definition(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())
