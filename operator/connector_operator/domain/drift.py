"""Drift: which fields of a remote instance differ from the request the operator would send.

The periodic check (and ObserveOnly's dry run) compares what the platform shows with the desired
request, field by field, as far as the platform lets us see: the name, the tags, and each
configuration value the spec sets. A masked value (the platform answers `********` for a secret)
and a key the platform does not list are skipped: they cannot be compared, and repairing them
every resync would be a PUT loop. The result names fields the way the spec does, for an Event, a
condition or `status.plannedAction`; it never carries a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connector_operator.domain.desired import IDENTITY_UID_PREFIX, DesiredInstance

MASK = "********"


def differences(
    desired: DesiredInstance, name: str, tags: Iterable[str], configuration: Mapping[str, str]
) -> list[str]:
    """The spec's names of the fields where the remote instance differs from `desired`."""
    fields = []
    if name != desired.name:
        fields.append("instanceName")
    if set(tags) != set(desired.tags):
        fields.append("tags")
    for key, wanted in sorted(desired.configuration.items()):
        remote = configuration.get(key)
        if remote is None or remote == MASK:
            continue
        if remote != wanted:
            fields.append(f"configuration.{key}")
    return fields


def planned_action(fields: list[str]) -> str:
    """`status.plannedAction` for an instance that exists: `None`, or `Update: <fields>`."""
    return f"Update: {', '.join(fields)}" if fields else "None"


def foreign_owners(tags: Iterable[str], own_tag: str) -> list[str]:
    """The identity tags of other objects on an instance: it belongs to them, never to be shared."""
    return [t for t in tags if t.startswith(IDENTITY_UID_PREFIX) and t != own_tag]
