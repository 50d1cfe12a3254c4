"""The API server and the operator read every pattern of the CRDs the same way.

The API server checks a CRD's `pattern` with Go's RE2, where `\\s`, `\\S`, `\\d`, `\\w` and `\\b` are
ASCII-only; the operator checks the same pattern with pydantic's regex engine, where they are
Unicode. So a tag ending in a no-break space (U+00A0) passed the CRD's `^\\S(.*\\S)?$` and failed
the model: the object was stored, reported `InvalidSpec`, and its delete handler raised on every
retry (issue 9 review, finding 4). Covers: no generated pattern (or CEL regex) uses such a class;
for tricky strings (Unicode and ASCII whitespace at either end or inside, non-ASCII letters) the
model and the CRD's pattern agree, read by Python's `re` in ASCII mode as Go would (exact for
patterns without those classes); and the real API server agrees with the model on a few.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from pydantic import ValidationError

from connector_operator.api import crd, names
from connector_operator.api.spec import parse_spec

MINIMAL_SPEC: dict[str, Any] = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}}
# Classes whose meaning differs between Go's RE2 (ASCII) and pydantic's engine (Unicode).
ENGINE_DEPENDENT = re.compile(r"(?<!\\)(?:\\\\)*\\[sSdDwWbB]")

TRICKY_TAGS = [
    "crm",
    "crm\u00a0",  # no-break space: the review's example
    "\u00a0crm",
    "crm\u2003",  # em space
    "crm\u3000",  # ideographic space
    "crm\u0085",  # next line
    "crm\ufeff",  # zero-width no-break space (not whitespace to anyone)
    "crm\v",  # vertical tab: whitespace to Python and Rust, not to Go's \s
    "crm ",
    " crm",
    "crm\t",
    "crm\r",
    "crm\n",
    "cr m",
    "cr\u00a0m",
    "café",
    "k",
    "\u00a0",
]
TRICKY_URLS = [
    "https://h.example/x",
    "https://h.example/x\u00a0",
    "https://h.example/x\u2003y",
    "https://h\u00a0.example/x",
    "https://h.example/x\v",
    "https://h.example/x y",
    "https://h.example/é",
]


def spec_with(field: str, value: str) -> dict[str, Any]:
    if field == "tags":
        return {**MINIMAL_SPEC, "tags": [value]}
    if field == "callbackURL":
        return {**MINIMAL_SPEC, "events": {"enabled": True, "vendorType": "webhook", "callbackURL": value}}
    return {**MINIMAL_SPEC, "apiURL": value}


def model_accepts(spec: dict[str, Any]) -> bool:
    try:
        parse_spec(spec)
    except ValidationError:
        return False
    return True


def schema() -> dict[str, Any]:
    definition = crd.definition(crd.RESOURCES[0])
    assert definition["spec"]["names"]["kind"] == names.KIND
    version, _ = definition["spec"]["versions"]  # the storage version; the other has its schema
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def crd_pattern(field: str) -> str:
    spec = schema()["properties"]
    node = {
        "tags": spec["tags"]["items"],
        "callbackURL": spec["events"]["properties"]["callbackURL"],
        "apiURL": spec["apiURL"],
    }[field]
    pattern: str = node["pattern"]
    return pattern


def crd_accepts(field: str, value: str) -> bool:
    """The CRD's pattern as Go reads it: re.ASCII gives \\s and \\S their ASCII meaning (Python also
    counts \\v, Go does not); exact for a pattern without such classes. fullmatch: Python's `$`
    also matches before a final newline, Go's does not."""
    return re.fullmatch(crd_pattern(field), value, re.ASCII) is not None


def every_regex(node: Any) -> Iterator[str]:
    """Every `pattern` of a schema, and every CEL rule (they may call matches())."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "x-kubernetes-validations":
                yield from (rule["rule"] for rule in value)
            else:
                yield from every_regex(value)
    elif isinstance(node, list):
        for item in node:
            yield from every_regex(item)


@pytest.mark.parametrize("resource", crd.RESOURCES, ids=lambda r: r.kind)
def test_no_pattern_uses_a_class_whose_meaning_depends_on_the_engine(resource: crd.Resource) -> None:
    version, _ = crd.definition(resource)["spec"]["versions"]  # the storage version; the other has its schema
    offending = [p for p in every_regex(version["schema"]) if ENGINE_DEPENDENT.search(p)]
    assert offending == []


@pytest.mark.parametrize(
    ("field", "value"),
    [*(("tags", t) for t in TRICKY_TAGS), *(("callbackURL", u) for u in TRICKY_URLS)]
    # A trailing `/` is allowed (issue 18), one only.
    + [("apiURL", "https://h.example/elements/api-v2" + s) for s in ("", "\u00a0", "\n", "/", "//", "/\n")],
)
def test_the_crd_pattern_and_the_model_agree(field: str, value: str) -> None:
    assert crd_accepts(field, value) == model_accepts(spec_with(field, value))


def test_a_tag_may_not_start_or_end_with_ascii_whitespace() -> None:
    for tag in ("crm ", " crm", "crm\t", "\tcrm", "crm\v", "crm\f", "crm\r"):
        assert not model_accepts(spec_with("tags", tag)), repr(tag)
    for tag in ("crm", "cr m", "café", "crm\u00a0"):
        assert model_accepts(spec_with("tags", tag)), repr(tag)


@pytest.mark.usefixtures("api_crds")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", "crm\u00a0"),
        ("tags", "\u2003crm"),
        ("tags", "crm\v"),
        ("tags", "crm "),
        ("tags", "café"),
        ("callbackURL", "https://h.example/x\u00a0"),
        ("callbackURL", "https://h.example/x\v"),
        ("apiURL", "https://h.example/elements/api-v2/"),
        ("apiURL", "https://h.example/elements/api-v2//"),
    ],
    ids=repr,
)
def test_the_api_server_and_the_model_agree(
    custom: client.CustomObjectsApi, namespace: str, field: str, value: str
) -> None:
    body = {
        "apiVersion": f"{names.GROUP}/{names.VERSION}",
        "kind": names.KIND,
        "metadata": {"name": f"ci-{uuid.uuid4().hex[:8]}"},
        "spec": spec_with(field, value),
    }
    refused: ApiException | None = None
    try:
        custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, body)
    except ApiException as error:
        refused = error
    if refused is not None:
        assert refused.status == 422, refused.body
        assert "should match" in json.loads(refused.body)["message"]
    assert (refused is None) == model_accepts(body["spec"])
