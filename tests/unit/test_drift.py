"""`domain.drift.differences` against a platform that answers names and tags HTML-escaped (issue 18).

The platform may return `shop &amp; crm` for the name `shop & crm`, and `it&#39;s` for the tag
`it's`. Compared as text, each such object was drift: a PUT at every check and after every restart.
Covers: escaped names and tags are the desired ones, and so are names and tags returned as sent
(a desired value that itself looks escaped included); a real difference is still drift, escaped or
not.
"""

from __future__ import annotations

from typing import Any

from connector_operator.api.spec import parse_spec
from connector_operator.domain.desired import DesiredInstance, desired_instance
from connector_operator.domain.drift import differences

UID = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
NAME = "shop & <crm> 'eu' \"main\""
TAGS = ["sales & marketing", "it's", 'say "hi"']  # '<', '>' and entities are refused in tags


def desired(**spec: Any) -> DesiredInstance:
    raw = {"connectorKey": "closeio", "credentialsSecretRef": {"name": "a"}, **spec}
    return desired_instance(parse_spec(raw), namespace="sales", name="crm", uid=UID, configuration={})


def escaped(text: str) -> str:
    """As the platform writes it: `&amp;`, `&lt;`, `&gt;`, `&quot;` and a numeric `&#39;`."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;")):
        text = text.replace(raw, entity)
    return text


def test_escaped_names_and_tags_are_no_drift() -> None:
    wanted = desired(instanceName=NAME, tags=TAGS)
    assert wanted.name == NAME
    assert differences(wanted, escaped(wanted.name), [escaped(t) for t in wanted.tags], {}) == []


def test_names_and_tags_as_sent_are_no_drift_even_when_they_look_escaped() -> None:
    wanted = desired(instanceName="R&amp;D", tags=["plain & simple"])
    assert differences(wanted, wanted.name, wanted.tags, {}) == []  # returned as sent
    # Escaped once more by the platform: unescaped, they are the desired ones again.
    assert differences(wanted, escaped(wanted.name), [escaped(t) for t in wanted.tags], {}) == []


def test_a_real_difference_is_still_drift_escaped_or_not() -> None:
    wanted = desired(instanceName=NAME, tags=TAGS)
    others = [escaped(t) for t in wanted.tags if t != "it's"]
    assert differences(wanted, escaped("shop & crm"), [*others, "it&#39;s not"], {}) == [
        "instanceName",
        "tags",
    ]
    assert differences(wanted, "shop &amp;amp; crm", others, {}) == ["instanceName", "tags"]


def test_tags_the_platform_could_turn_into_the_operators_own_are_never_sent() -> None:
    # A hostile-tenant review: the platform strips markup and may decode entities, so these would
    # be stored as another object's identity or claim (domain/ownership.py). The CRD refuses them.
    forged = ["<b></b>k8s-claim:prod/team-b/crm", "&#107;8s-uid:x", "K8S-uid:x", "a<b", "crm"]
    assert [t for t in desired(tags=forged).tags if not t.startswith("k8s-")] == ["crm"]
