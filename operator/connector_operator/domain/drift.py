"""Drift: which fields of a remote instance differ from the request the operator would send.

The periodic check (and ObserveOnly's dry run) compares what the platform shows with the desired
request, field by field, as far as the platform lets us see: the name, the tags, and each
configuration value the spec sets. A masked value (the platform answers `********` for a secret)
and a key the platform does not list are skipped: they cannot be compared, and repairing them
every resync would be a PUT loop. The platform may answer names and tags HTML-escaped (`&amp;`,
`&#39;`), or it would be a PUT at every check and after every restart: the name is the desired one
if it is as given or unescaped, and so are the tags (all as given, or all unescaped). The result
names fields the way the spec does, for an Event, a condition or `status.plannedAction`; it never
carries a value.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from connector_operator.domain.desired import DesiredInstance

MASK = "********"


def differences(
    desired: DesiredInstance, name: str, tags: Iterable[str], configuration: Mapping[str, str]
) -> list[str]:
    """The spec's names of the fields where the remote instance differs from `desired`."""
    fields = []
    if not _same(name, desired.name):
        fields.append("instanceName")
    remote_tags, wanted_tags = set(tags), set(desired.tags)
    if remote_tags != wanted_tags and {html.unescape(t) for t in remote_tags} != wanted_tags:
        fields.append("tags")
    for key, wanted in sorted(desired.configuration.items()):
        remote = configuration.get(key)
        if remote is None or remote == MASK:
            continue
        if remote != wanted:
            fields.append(f"configuration.{key}")
    return fields


def _same(remote: str, wanted: str) -> bool:
    """Whether the platform's form of a string is `wanted`: as is, or HTML-unescaped."""
    return remote == wanted or html.unescape(remote) == wanted


def planned_action(fields: list[str]) -> str:
    """`status.plannedAction` for an instance that exists: `None`, or `Update: <fields>`."""
    return f"Update: {', '.join(fields)}" if fields else "None"
