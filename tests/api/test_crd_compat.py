"""The compatibility rule: the working tree's CRDs accept every object the previous release stored.

The CRDs generated from the models (`crd.render()`, what `make crds` commits) are compared with the
previous release's `crds/` (`git show`, at the commit `hack.releases` resolves from the tag or from
CHANGELOG.md). An object that release stored under one of its served versions is served again, with
`conversion: None`, under every version the new CRD serves, so its schema in each old served
version is compared with the schema of each new served version. A change fails when it could make
such an object invalid or lose what the previous release wrote:

- a served version no longer served (unless the previous release already served it deprecated);
- the scope changed, or a CRD of the previous release is no longer generated;
- a property missing, or its type changed; an enum that lost a value (or appeared); a field newly
  required; maxLength, maxItems, maxProperties or maximum lower, minLength, minItems,
  minProperties or minimum higher (or newly set, or made exclusive); a pattern or format changed
  or added; no longer nullable; unknown fields no longer preserved; a list's type or map keys
  changed; an allOf/anyOf/oneOf/not added or changed;
- a new x-kubernetes-validations rule that is not a transition rule (one that uses oldSelf, without
  optionalOldSelf: it judges a change, never an object at rest), unless ALLOWED_NEW_RULES names it
  with the reason it cannot invalidate a stored object.

Nested properties, array items and map values are walked. Every failure names the kind, the old
and the new version, the path and what changed. No cluster: pure comparison, in well under a second.
"""

from __future__ import annotations

import copy
import functools
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import yaml

from connector_operator.api import crd
from hack import releases

Schema = dict[str, Any]

# New non-transition rules that cannot invalidate a stored object, each with its reason (rule text
# -> why). A rule belongs here only when every object the previous release accepted passes it: one
# that restates a constraint the previous schema already had at the same path, or one that holds
# whenever a field new in this release is absent (`!has(self.oauth) || ...` when the previous
# release had no spec.oauth: it pruned any it was sent, so no stored object has one). Anything else
# needs a migration first, or a transition rule (oldSelf) instead. None so far.
ALLOWED_NEW_RULES: dict[str, str] = {}

UPPER_BOUNDS = ("maxLength", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minLength", "minItems", "minProperties")
CHANGED_ONLY = ("pattern", "format", "x-kubernetes-list-map-keys", "allOf", "anyOf", "oneOf", "not")
OLD_SELF = re.compile(r"\boldSelf\b")


def served(definition: Schema) -> dict[str, Schema]:
    return {v["name"]: v for v in definition["spec"]["versions"] if v.get("served")}


def is_transition_rule(rule: Schema) -> bool:
    """A rule on oldSelf runs on updates only; with optionalOldSelf it runs on every write."""
    return bool(OLD_SELF.search(rule["rule"])) and not rule.get("optionalOldSelf", False)


def _bound_narrowed(old: Schema, new: Schema, key: str, upper: bool) -> str | None:
    """maximum/minimum with OpenAPI 3.0's boolean exclusiveMaximum/exclusiveMinimum."""
    exclusive = "exclusiveMaximum" if upper else "exclusiveMinimum"
    before, after = old.get(key), new.get(key)
    if after is None:
        return None
    if before is not None:
        tighter = after < before if upper else after > before
        made_exclusive = after == before and new.get(exclusive) and not old.get(exclusive)
        if not (tighter or made_exclusive):
            return None

    def shown(schema: Schema) -> str:
        bound = schema.get(key)
        return "unbounded" if bound is None else f"{bound}{' (exclusive)' if schema.get(exclusive) else ''}"

    return f"{key} {'lowered' if upper else 'raised'} from {shown(old)} to {shown(new)}"


def _value_changes(old: Schema, new: Schema) -> Iterator[str]:
    """What narrowed on this one node, its children aside."""
    if old.get("type") != new.get("type"):
        yield f"type changed from {old.get('type')} to {new.get('type')}"
    if "enum" in new and "enum" not in old:
        yield f"enum added: only {new['enum']}"
    elif "enum" in new and (lost := [value for value in old["enum"] if value not in new["enum"]]):
        yield f"enum lost {lost} (now {new['enum']})"
    for key in UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            yield f"{key} lowered from {old.get(key, 'unbounded')} to {new[key]}"
    for key in LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            yield f"{key} raised from {old.get(key, 0)} to {new[key]}"
    for key, upper in (("maximum", True), ("minimum", False)):
        if (narrowed := _bound_narrowed(old, new, key, upper)) is not None:
            yield narrowed
    for key in CHANGED_ONLY:
        if key in new and new[key] != old.get(key):
            yield f"{key} changed from {old.get(key, '(none)')!r} to {new[key]!r}"


def _shape_changes(old: Schema, new: Schema) -> Iterator[str]:
    """What could refuse or prune what an object holds: required fields, nulls, unknown fields."""
    added = [name for name in new.get("required", []) if name not in old.get("required", [])]
    if added:
        yield f"newly required: {added}"
    if old.get("nullable") and not new.get("nullable"):
        yield "no longer nullable"
    if old.get("x-kubernetes-preserve-unknown-fields") and not new.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        yield "unknown fields no longer preserved (they would be pruned)"
    list_type = new.get("x-kubernetes-list-type", "atomic")
    if list_type != old.get("x-kubernetes-list-type", "atomic") and list_type != "atomic":
        yield f"list type changed from {old.get('x-kubernetes-list-type', 'atomic')} to {list_type}"


def _rule_changes(old: Schema, new: Schema, allowed: Mapping[str, str]) -> Iterator[str]:
    before = {rule["rule"] for rule in old.get("x-kubernetes-validations", [])}
    for rule in new.get("x-kubernetes-validations", []):
        if rule["rule"] not in before and not is_transition_rule(rule) and rule["rule"] not in allowed:
            yield f"new validation rule, not a transition rule and not allowed: {rule['rule']}"


def _children(old: Schema, new: Schema, path: str) -> Iterator[tuple[str, Schema, Schema | None]]:
    """(path, old child, new child or None) for every property, the items and the map values."""
    for name, child in old.get("properties", {}).items():
        yield f"{path}.{name}", child, new.get("properties", {}).get(name)
    if isinstance(old.get("items"), dict):
        yield f"{path}[*]", old["items"], new.get("items")
    if isinstance(old.get("additionalProperties"), dict):
        yield f"{path}.*", old["additionalProperties"], new.get("additionalProperties")


def schema_changes(
    old: Schema, new: Schema, allowed: Mapping[str, str] = ALLOWED_NEW_RULES, path: str = ""
) -> Iterator[tuple[str, str]]:
    """(path, what changed) for every incompatible change from `old` to `new`, nested ones too."""
    for change in (*_value_changes(old, new), *_shape_changes(old, new), *_rule_changes(old, new, allowed)):
        yield path or ".", change
    for child_path, old_child, new_child in _children(old, new, path):
        if not isinstance(new_child, dict):
            yield child_path, "missing (a field the previous release's schema had)"
        else:
            yield from schema_changes(old_child, new_child, allowed, child_path)


def violations(old: Schema, new: Schema, allowed: Mapping[str, str] = ALLOWED_NEW_RULES) -> list[str]:
    """Every way `new` (a CRD) could refuse, or lose part of, an object `old` (its previous release)
    stored, as messages naming the kind, the versions, the path and the change."""
    kind = old["spec"]["names"]["kind"]
    found = []
    if new["spec"]["scope"] != old["spec"]["scope"]:
        found.append(f"{kind}: scope changed from {old['spec']['scope']} to {new['spec']['scope']}")
    now_served = served(new)
    for name, version in served(old).items():
        if name not in now_served and not version.get("deprecated"):
            found.append(
                f"{kind} {name}: served by the previous release, not deprecated there, no longer served"
            )
        before = version["schema"]["openAPIV3Schema"]
        for new_name, new_version in now_served.items():
            after = new_version["schema"]["openAPIV3Schema"]
            found += [
                f"{kind} {name} read as {new_name}, {path}: {change}"
                for path, change in schema_changes(before, after, allowed)
            ]
    return found


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(releases.ROOT), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def previous() -> dict[str, Schema]:
    """The previous release's CRDs by name, from its commit (tag or CHANGELOG.md)."""
    commit = releases.commit_of(releases.previous_release())
    files = _git("ls-tree", "--name-only", commit, "crds/").split()
    assert files, f"no crds/ at {commit}"
    definitions = [yaml.safe_load(_git("show", f"{commit}:{path}")) for path in files]
    return {d["metadata"]["name"]: d for d in definitions}


@functools.cache
def _rendered() -> dict[str, Schema]:
    return {r.name: yaml.safe_load(crd.render(r)) for r in crd.RESOURCES}


def current() -> dict[str, Schema]:
    """The working tree's CRDs, as `make crds` writes them (tests/api/test_crd.py keeps crds/ equal
    to render()); a copy each call, since the planted tests edit them."""
    return copy.deepcopy(_rendered())


def test_the_working_tree_accepts_everything_the_previous_release_stored(
    previous: dict[str, Schema],
) -> None:
    now = current()
    assert sorted(previous) == sorted(set(previous) & set(now)), "a CRD of the previous release is gone"
    found = [message for name, old in previous.items() for message in violations(old, now[name])]
    assert found == [], "\n".join(found)


# Planted violations: each edits one served version of the working tree's ConnectorInstance CRD,
# in memory, and the comparison with the previous release must name it.
INSTANCE = crd.INSTANCE.name
Edit = Callable[[Schema], None]


def node(schema: Schema, path: str) -> Schema:
    """The schema at a path as the messages write it: `.spec.configuration[*].key` (array items),
    `.spec.tokenSecret.labels.*` (map values)."""
    for step in re.findall(r"\[\*\]|\.[^.\[]+", path):
        if step == "[*]":
            schema = schema["items"]
        elif step == ".*":
            schema = schema["additionalProperties"]
        else:
            schema = schema["properties"][step[1:]]
    return schema


def drop(path: str) -> Edit:
    parent, _, name = path.rpartition(".")

    def edit(schema: Schema) -> None:
        del node(schema, parent)["properties"][name]

    return edit


def set_key(path: str, key: str, value: Any) -> Edit:
    return lambda schema: node(schema, path).__setitem__(key, value)


def add_rule(path: str, rule: str) -> Edit:
    def edit(schema: Schema) -> None:
        node(schema, path).setdefault("x-kubernetes-validations", []).append(
            {"rule": rule, "message": "planted"}
        )

    return edit


PLANTED: dict[str, tuple[Edit, str, str]] = {
    # id: (the edit, the path its message names, words the message holds)
    "drop-spec-field": (drop(".spec.instanceName"), ".spec.instanceName", "missing"),
    "drop-status-field": (drop(".status.instanceID"), ".status.instanceID", "missing"),
    "drop-inside-items": (
        drop(".spec.configuration[*].valueFrom.secretKeyRef.key"),
        ".spec.configuration[*].valueFrom.secretKeyRef.key",
        "missing",
    ),
    "change-type": (set_key(".status.instanceID", "type", "string"), ".status.instanceID", "type changed"),
    "narrow-enum": (
        set_key(".spec.deletionPolicy", "enum", ["Delete"]),
        ".spec.deletionPolicy",
        "lost ['Orphan']",
    ),
    "require-field": (
        set_key(".spec.tokenSecret", "required", ["name"]),
        ".spec.tokenSecret",
        "newly required",
    ),
    "shrink-maxlength-in-map": (
        set_key(".spec.tokenSecret.annotations.*", "maxLength", 1024),
        ".spec.tokenSecret.annotations.*",
        "maxLength lowered from 4096 to 1024",
    ),
    "shrink-maxitems": (set_key(".spec.configuration", "maxItems", 100), ".spec.configuration", "maxItems"),
    "raise-minimum": (
        set_key(".spec.events.pollingIntervalMinutes", "minimum", 5),
        ".spec.events.pollingIntervalMinutes",
        "minimum raised from 1 to 5",
    ),
    "change-pattern": (set_key(".spec.tags[*]", "pattern", "^[a-z]+$"), ".spec.tags[*]", "pattern changed"),
    "add-cel-rule": (add_rule(".spec", "size(self.connectorKey) < 20"), ".spec", "new validation rule"),
    "add-cel-rule-in-items": (
        add_rule(".spec.configuration[*]", "self.key != 'x'"),
        ".spec.configuration[*]",
        "new validation rule",
    ),
}
VERSIONS = list(served(yaml.safe_load(crd.render())))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("planted", list(PLANTED))
def test_a_planted_violation_is_named(previous: dict[str, Schema], planted: str, version: str) -> None:
    """Planted in either served version, it is found: the old schema is compared with both."""
    edit, path, words = PLANTED[planted]
    changed = copy.deepcopy(current()[INSTANCE])
    edit(served(changed)[version]["schema"]["openAPIV3Schema"])
    found = violations(previous[INSTANCE], changed)
    named = f" read as {version}, {path}: "
    assert [m for m in found if m.startswith("ConnectorInstance v") and named in m and words in m], found
    assert all(f" read as {version}, " in message for message in found), found  # the other is clean


def without_v1alpha1(edit: str) -> Schema:
    changed = copy.deepcopy(current()[INSTANCE])
    if edit == "removed":
        changed["spec"]["versions"] = [v for v in changed["spec"]["versions"] if v["name"] != "v1alpha1"]
    for version in changed["spec"]["versions"]:
        version["served"] = version["served"] and version["name"] != "v1alpha1"
    return changed


@pytest.mark.parametrize("edit", ["removed", "not-served"])
def test_a_version_the_previous_release_served_must_still_be_served(
    previous: dict[str, Schema], edit: str
) -> None:
    assert violations(previous[INSTANCE], without_v1alpha1(edit)) == [
        "ConnectorInstance v1alpha1: served by the previous release, not deprecated there, no longer served"
    ]


def test_a_version_deprecated_in_the_previous_release_may_go(previous: dict[str, Schema]) -> None:
    """As the README's version scheme says: a served version goes only after a release deprecated it."""
    deprecated = copy.deepcopy(previous[INSTANCE])
    for version in deprecated["spec"]["versions"]:
        version["deprecated"] = True
    assert violations(deprecated, without_v1alpha1("removed")) == []


def test_a_changed_scope_is_named(previous: dict[str, Schema]) -> None:
    changed = copy.deepcopy(current()[INSTANCE])
    changed["spec"]["scope"] = "Cluster"
    assert violations(previous[INSTANCE], changed) == [
        "ConnectorInstance: scope changed from Namespaced to Cluster"
    ]


def test_rules_new_rules_transition_rules_and_the_allowlist() -> None:
    old: Schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}]}
    rules = [
        {"rule": "self.a > 0"},  # the previous release had it
        {"rule": "self.a == oldSelf.a"},  # a transition rule: judges a change only
        {"rule": "self.a < 10"},  # new: an object with a = 10 is refused at its next write
        {"rule": "oldSelf.hasValue() || self.a < 5", "optionalOldSelf": True},  # runs on creates too
        {"rule": "size(self.b) >= 0"},  # allowed below
    ]
    new: Schema = {"type": "object", "x-kubernetes-validations": rules}
    allowed = {"size(self.b) >= 0": "true for every string"}
    assert [change for _, change in schema_changes(old, new, allowed)] == [
        "new validation rule, not a transition rule and not allowed: self.a < 10",
        "new validation rule, not a transition rule and not allowed: oldSelf.hasValue() || self.a < 5",
    ]


def test_widening_and_adding_optional_fields_pass() -> None:
    old: Schema = {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": {"type": "string", "maxLength": 10, "pattern": "^x", "enum": ["x", "xy"]},
            "n": {"type": "integer", "minimum": 1, "maximum": 5, "exclusiveMinimum": True},
            "l": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
        },
    }
    new = copy.deepcopy(old)
    new["required"] = []
    new["properties"]["a"] = {"type": "string", "maxLength": 20, "enum": ["x", "xy", "xyz"]}
    new["properties"]["n"] = {"type": "integer", "minimum": 1, "maximum": 9}
    new["properties"]["l"]["maxItems"] = 5
    new["properties"]["added"] = {"type": "string", "maxLength": 3}
    new["x-kubernetes-validations"] = [{"rule": "self.added == oldSelf.added"}]
    assert list(schema_changes(old, new)) == []
    assert list(schema_changes(new, old)) != []  # and back is a narrowing


def test_bounds_made_exclusive_or_newly_set_are_narrowings() -> None:
    old: Schema = {"type": "integer", "minimum": 1}
    assert [c for _, c in schema_changes(old, {**old, "exclusiveMinimum": True})] == [
        "minimum raised from 1 to 1 (exclusive)"
    ]
    assert [c for _, c in schema_changes(old, {**old, "maximum": 9})] == [
        "maximum lowered from unbounded to 9"
    ]
    assert [c for _, c in schema_changes({"type": "string"}, {"type": "string", "enum": ["a"]})] == [
        "enum added: only ['a']"
    ]
