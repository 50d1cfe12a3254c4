"""The CustomResourceDefinitions, generated from the pydantic models.

pydantic emits JSON Schema with `$ref`s, `anyOf` for optionals and titles; a Kubernetes
structural schema wants everything inline, nullable-free optionals (absence is optional), no
`additionalProperties` beside `properties` and OpenAPI 3.0's boolean `exclusiveMinimum`.
`structural()` does that translation, so the models stay the single source of truth. There are
three resources (`RESOURCES`): ConnectorInstance, ConnectorAccount and ClusterConnectorAccount.
`python -m connector_operator.api.crd DIR...` writes one file per resource into each DIR (what
`make crds` commits to `crds/` and the chart); without arguments it prints the ConnectorInstance
CRD. A test fails when a committed file differs from `render()`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from connector_operator.api import names
from connector_operator.api.account import (
    ClusterConnectorAccountSpec,
    ConnectorAccountSpec,
    ConnectorAccountStatus,
)
from connector_operator.api.fields import cel
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.api.status import ConnectorInstanceStatus

Schema = dict[str, Any]

KOPF_STATUS_FIELD = "kopf"


# Keys a structural schema does without: titles are pydantic's noise, `$defs` are inlined where
# they are used, and there are no schema defaults (the API server would write them, and GitOps
# tools see drift).
_DROPPED = frozenset({"title", "$defs", "default"})


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(_dereferenced(node, defs), defs)
    if "anyOf" in node:
        return _inline(_not_null(node, defs), defs)
    return _inline_keys(node, defs)


def _dereferenced(node: Schema, defs: dict[str, Schema]) -> Schema:
    """The definition a `$ref` names, with the keys beside the `$ref` (a description) on top."""
    target = _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    extra = {k: v for k, v in node.items() if k != "$ref"}
    return {**target, **extra}


def _not_null(node: Schema, defs: dict[str, Schema]) -> Schema:
    """An optional's `anyOf` (the type or null) as the type alone: in a structural schema, absence
    is what makes a field optional. Any other union cannot be expressed."""
    options = [option for option in node["anyOf"] if option.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"cannot express a union in a structural schema: {node['anyOf']}")
    return {**_inline(options[0], defs), **{k: v for k, v in node.items() if k != "anyOf"}}


def _inline_keys(node: Schema, defs: dict[str, Schema]) -> Schema:
    """An object schema without references or unions, each value inlined in turn."""
    result: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "additionalProperties" and "properties" in node:
            continue  # mutually exclusive with properties; unknown fields are pruned anyway
        if key == "exclusiveMinimum" and not isinstance(value, bool):
            # JSON Schema 2020-12 (pydantic) gives the bound; OpenAPI 3.0 (Kubernetes) a flag.
            result["minimum"], result["exclusiveMinimum"] = value, True
        elif key == "properties":
            result[key] = {name: _inline(prop, defs) for name, prop in value.items()}
        else:
            result[key] = _inline(value, defs)
    return result


def structural(model: type[Any]) -> Schema:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    inlined: Schema = _inline(schema, defs)
    return inlined


@dataclass(frozen=True)
class Resource:
    """What differs between the three CRDs; the rest of a definition is common."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: str
    description: str
    spec: type[BaseModel]
    spec_description: str
    status: type[BaseModel]
    columns: tuple[Schema, ...]
    rules: tuple[Schema, ...] = ()  # CEL rules on the whole object (spec against status)

    @property
    def name(self) -> str:
        return f"{self.plural}.{names.GROUP}"

    @property
    def filename(self) -> str:
        return f"{names.GROUP}_{self.plural}.yaml"


def _condition_column(name: str, field: str, description: str) -> Schema:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="Ready")].{field}',
        "description": description,
    }


AGE: Schema = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

ACCOUNT_COLUMNS: tuple[Schema, ...] = (
    _condition_column("Ready", "status", "Whether the credentials were verified and the platform answers."),
    _condition_column("Reason", "reason", "Why it is, or is not, ready."),
    {
        "name": "Instances",
        "type": "integer",
        "jsonPath": ".status.instances",
        "description": "ConnectorInstances using this account.",
    },
    {
        "name": "Budget",
        "type": "number",
        "jsonPath": ".spec.requestBudget.requestsPerSecond",
        "description": "Requests per second for all its instances together.",
    },
    {
        "name": "Circuit",
        "type": "string",
        "jsonPath": ".status.circuit.state",
        "description": "Closed, Open or HalfOpen.",
    },
    AGE,
)


def _unchanged(field: str) -> str:
    return (
        f"has(self.spec.{field}) == has(oldSelf.spec.{field}) && "
        f"(!has(self.spec.{field}) || self.spec.{field} == oldSelf.spec.{field})"
    )


def _unchanged_url(field: str) -> str:
    """`_unchanged` for an API URL: adding or removing the one trailing `/` its pattern allows is
    no change (the operator drops it: the same platform, the same digest, no PUT)."""
    new, old = f"self.spec.{field}", f"oldSelf.spec.{field}"
    return (
        f"has({new}) == has({old}) && "
        f"(!has({new}) || {new} == {old} || {new} == {old} + '/' || {new} + '/' == {old})"
    )


# Where the remote instance lives and as whom: once it exists, a change would leave it behind
# (its platform, connector or account changes, and the old instance is never addressed again).
# Rotating credentials changes the Secret's content, not its name.
# Refused on the API server, before anything is lost; the operator refuses it too
# (reconciler/reconcile.py), for objects written before this rule.
PINNED = (
    cel(
        "!has(oldSelf.status) || !has(oldSelf.status.instanceID) || ("
        "self.spec.connectorKey == oldSelf.spec.connectorKey && "
        + _unchanged_url("apiURL")
        + " && "
        + _unchanged("accountRef")
        + " && "
        + _unchanged("credentialsSecretRef")
        + ")",
        "connectorKey, apiURL, accountRef and credentialsSecretRef cannot change once the remote "
        "instance exists (status.instanceID): delete this object (its deletionPolicy applies) and "
        "create a new one, or, to keep the instance, delete it with deletionPolicy Orphan and adopt "
        "the instance from a new object with spec.instanceID",
    ),
)

INSTANCE = Resource(
    kind=names.KIND,
    plural=names.PLURAL,
    singular=names.SINGULAR,
    short_names=names.SHORT_NAMES,
    scope="Namespaced",
    description="A connector instance on SAP Open Connectors, managed from Kubernetes. The operator "
    "creates, updates and deletes the remote instance and writes its token into a Secret.",
    spec=ConnectorInstanceSpec,
    spec_description="Desired state of the connector instance on SAP Open Connectors.",
    status=ConnectorInstanceStatus,
    columns=(
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
        {
            "name": "Account",
            "type": "string",
            "jsonPath": ".spec.accountRef.name",
            "description": "The account named in spec.accountRef (empty for the default account or "
            "credentialsSecretRef).",
        },
        AGE,
    ),
    rules=PINNED,
)

ACCOUNT = Resource(
    kind=names.ACCOUNT_KIND,
    plural=names.ACCOUNT_PLURAL,
    singular=names.ACCOUNT_SINGULAR,
    short_names=names.ACCOUNT_SHORT_NAMES,
    scope="Namespaced",
    description="An SAP Open Connectors account for the ConnectorInstances of its namespace: the "
    "platform endpoint, the credentials Secret and a request budget they all share.",
    spec=ConnectorAccountSpec,
    spec_description="The platform endpoint, credentials and request budget.",
    status=ConnectorAccountStatus,
    columns=ACCOUNT_COLUMNS,
)

CLUSTER_ACCOUNT = Resource(
    kind=names.CLUSTER_ACCOUNT_KIND,
    plural=names.CLUSTER_ACCOUNT_PLURAL,
    singular=names.CLUSTER_ACCOUNT_SINGULAR,
    short_names=names.CLUSTER_ACCOUNT_SHORT_NAMES,
    scope="Cluster",
    description="An SAP Open Connectors account owned by the platform team, for the "
    "ConnectorInstances of the namespaces it selects: the platform endpoint, the credentials Secret "
    "and a request budget they all share.",
    spec=ClusterConnectorAccountSpec,
    spec_description="The platform endpoint, credentials, request budget, and who may use the account.",
    status=ConnectorAccountStatus,
    columns=ACCOUNT_COLUMNS,
)

RESOURCES: tuple[Resource, ...] = (INSTANCE, ACCOUNT, CLUSTER_ACCOUNT)


def openapi_schema(resource: Resource = INSTANCE) -> Schema:
    spec = structural(resource.spec)
    spec["description"] = resource.spec_description
    status = structural(resource.status)
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
    rules = {"x-kubernetes-validations": list(resource.rules)} if resource.rules else {}
    return {
        "type": "object",
        "description": resource.description,
        **rules,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this representation."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def definition(resource: Resource = INSTANCE) -> Schema:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.name,
            "labels": {"app.kubernetes.io/name": "open-connectors-operator"},
        },
        "spec": {
            "group": names.GROUP,
            "scope": resource.scope,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": [names.CATEGORY],
            },
            # One schema for every version: `conversion: None` holds (the API server only changes
            # apiVersion), and tests/api/test_crd_compat.py keeps a change compatible.
            "versions": [_version(resource, name) for name in names.VERSIONS],
        },
    }


def _version(resource: Resource, name: str) -> Schema:
    version: Schema = {"name": name, "served": True, "storage": name == names.VERSION}
    if name != names.VERSION:
        version["deprecated"] = True
        version["deprecationWarning"] = (
            f"{names.GROUP}/{name} {resource.kind} is deprecated; use {names.GROUP}/{names.VERSION} "
            "(the same schema: change apiVersion only)"
        )
    return {
        **version,
        "subresources": {"status": {}},
        "additionalPrinterColumns": list(resource.columns),
        "schema": {"openAPIV3Schema": openapi_schema(resource)},
    }


def render(resource: Resource = INSTANCE) -> str:
    header = "# Generated from connector_operator.api by `make crds`. Do not edit.\n"
    return header + yaml.safe_dump(definition(resource), sort_keys=False, width=120)


def write(directory: Path) -> None:
    """Write every CRD into `directory`, one file each, named as `kubectl` users expect."""
    for resource in RESOURCES:
        (directory / resource.filename).write_text(render(resource))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        for target in sys.argv[1:]:
            write(Path(target))
    else:
        sys.stdout.write(render())
