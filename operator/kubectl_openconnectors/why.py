"""`why NAME`: everything the API server knows about why an instance is as it is, in one place.

Its conditions with their messages, its last Events (of this object's UID), `status.plannedAction`,
the next retry where the operator reports one, and for a blocked deletion the one command that
releases it (README, "How it behaves": `deletionPolicy: Orphan` releases the object and leaves
the remote instance on the platform).

The next retry: for a live object, `status.nextAttemptAt`, which the operator writes once its
attempts are a minute or more apart (shorter waits are not written: `why` says the next attempt
is within a minute); for a deletion, kopf's progress record of its delete handler
(`status.kopf.progress.delete_instance.delayed`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubectl_openconnectors import names, objects, render
from kubectl_openconnectors.objects import Obj
from kubectl_openconnectors.render import Palette

EPOCH = datetime.fromtimestamp(0, UTC)
CONDITION_ORDER = ("Ready", "Synced", "Reconciling", "Stalled")
NO_RETRY_TIME = "within a minute (the operator writes the time of waits of a minute or more)"


def release_command(namespace: str, name: str) -> str:
    """The command the operator's own DeletionBlocked message names (a test keeps them equal)."""
    return (
        f"kubectl patch {names.INSTANCE_PLURAL} {name} -n {namespace} --type merge "
        """-p '{"spec":{"deletionPolicy":"Orphan"}}'"""
    )


def report(obj: Obj, events: list[Obj], limit: int) -> dict[str, Any]:
    """The machine-readable report (`-o json|yaml`); the table is rendered from it."""
    meta, status, spec = objects.meta(obj), objects.status(obj), objects.spec(obj)
    kind, _, account = objects.account_of(obj)
    return {
        "kind": names.INSTANCE_KIND,
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "ready": str(objects.condition(obj, "Ready").get("status", "Unknown")),
        "reason": objects.reason(obj),
        "account": f"{kind}/{account}" if account else "default",
        "instanceID": status.get("instanceID"),
        "managementPolicy": str(spec.get("managementPolicy") or "Full"),
        "paused": objects.paused(obj),
        "plannedAction": status.get("plannedAction"),
        "conditions": [
            _condition(objects.condition(obj, t)) for t in CONDITION_ORDER if objects.condition(obj, t)
        ],
        "events": last_events(events, limit),
        "nextRetry": next_retry(obj),
        "deletion": deletion(obj),
    }


def _condition(condition: Obj) -> dict[str, str]:
    return {
        "type": str(condition.get("type") or ""),
        "status": str(condition.get("status") or ""),
        "reason": str(condition.get("reason") or ""),
        "message": str(condition.get("message") or ""),
        "lastTransitionTime": str(condition.get("lastTransitionTime") or ""),
    }


def event_time(event: Obj) -> str:
    """When an Event was last seen: its series, its last timestamp, its event time, its creation."""
    series = (event.get("series") or {}).get("lastObservedTime")
    created = (event.get("metadata") or {}).get("creationTimestamp")
    return str(series or event.get("lastTimestamp") or event.get("eventTime") or created or "")


def last_events(events: list[Obj], limit: int) -> list[dict[str, Any]]:
    """The `limit` latest Events, oldest first (as `kubectl describe` lists them)."""
    latest = sorted(events, key=lambda e: render.parse_time(event_time(e)) or EPOCH)
    return [
        {
            "lastSeen": event_time(event),
            "type": str(event.get("type") or ""),
            "reason": str(event.get("reason") or ""),
            "count": int(event.get("count") or (event.get("series") or {}).get("count") or 1),
            "message": str(event.get("message") or event.get("note") or ""),
        }
        for event in latest[-limit:]
    ]


def next_retry(obj: Obj) -> dict[str, Any]:
    """{"at": RFC 3339 time or None, "note": what it is, or why there is none}."""
    record: Any = obj
    for part in (*names.PROGRESS_FIELD, names.DELETE_HANDLER):
        record = record.get(part) if isinstance(record, dict) else None
    delayed = record.get("delayed") if isinstance(record, dict) else None
    if objects.deleting(obj) and delayed:
        return {"at": str(delayed), "note": "the deletion's next attempt"}
    if objects.is_true(obj, "Reconciling") and not objects.paused(obj):
        status = obj.get("status")
        at = status.get(names.NEXT_ATTEMPT_FIELD) if isinstance(status, dict) else None
        if isinstance(at, str):
            return {
                "at": at,
                "note": "the operator's next attempt (backoff or the platform's Retry-After)",
                "overdue": "2.5 to 5 min (the backoff's cap, by default) or as the platform asks",
            }
        return {"at": None, "note": NO_RETRY_TIME}
    return {"at": None, "note": ""}


def deletion(obj: Obj) -> dict[str, Any]:
    """Whether a deletion is blocked and, if the spec can release it, the command that does."""
    meta, spec = objects.meta(obj), objects.spec(obj)
    held = objects.deleting(obj) and names.FINALIZER in (meta.get("finalizers") or [])
    blocked = held or any(c.get("reason") == names.DELETION_BLOCKED_REASON for c in objects.conditions(obj))
    releasing = spec.get("deletionPolicy") == "Orphan" or spec.get("managementPolicy") == "ObserveOnly"
    release = (
        None
        if not blocked or releasing
        else release_command(str(meta.get("namespace")), str(meta.get("name")))
    )
    note = ""
    if blocked and releasing:
        note = (
            "already released by its spec (no platform call is made): the operator removes its "
            "finalizer at its next attempt; if the object stays, check that the operator runs"
        )
    return {"deleting": objects.deleting(obj), "blocked": blocked, "releaseCommand": release, "note": note}


def healthy(data: dict[str, Any]) -> bool:
    """Ready, not stalled, not being deleted: `why` exits 0 only then."""
    stalled = any(c["type"] == "Stalled" and c["status"] == "True" for c in data["conditions"])
    return data["ready"] == "True" and not stalled and not data["deletion"]["deleting"]


# The table


def render_report(data: dict[str, Any], palette: Palette, moment: datetime) -> str:
    """The report as text. Every value from the cluster goes through render.safe: the tables do it
    for their cells, the lines here for theirs."""
    parts = [
        _summary(data, palette, moment),
        _conditions(data, palette, moment),
        _events(data, palette, moment),
    ]
    if data["deletion"]["releaseCommand"]:
        parts.append(
            "Deletion blocked. To release the object and leave the remote instance on the platform:\n"
            f"  {render.safe(data['deletion']['releaseCommand'], render.MESSAGE_LIMIT)}"
        )
    elif data["deletion"]["note"]:
        parts.append(f"Deletion: {data['deletion']['note']}")
    return "\n\n".join(parts)


def _summary(data: dict[str, Any], palette: Palette, moment: datetime) -> str:
    reason = f" ({render.safe(data['reason'])})" if data["reason"] else ""
    fields = [
        ("Account", data["account"]),
        ("Instance ID", "" if data["instanceID"] is None else str(data["instanceID"])),
        ("Management", data["managementPolicy"]),
        ("Planned action", data["plannedAction"] or ""),
        ("Paused", "yes" if data["paused"] else ""),
        ("Next retry", _retry(data["nextRetry"], moment)),
        ("Deleting", "yes" if data["deletion"]["deleting"] else ""),
    ]
    head = render.safe(f"{data['kind']} {data['namespace']}/{data['name']}", render.MESSAGE_LIMIT)
    lines = [f"  {k + ':':<16}{render.safe(v, render.MESSAGE_LIMIT)}" for k, v in fields if v]
    ready = f"  {'Ready:':<16}{palette.status(render.safe(data['ready']))}{reason}"
    return "\n".join([palette.paint(head, "bold"), ready, *lines])


def _retry(retry: dict[str, Any], moment: datetime) -> str:
    if retry["at"] is None:
        return str(retry["note"])
    when = render.parse_time(retry["at"])
    seconds = int((when - moment).total_seconds()) if when is not None else 0
    if seconds > 0:
        return f"in {render.short_duration(seconds)} ({retry['at']}): {retry['note']}"
    if seconds < -60 and retry.get("overdue"):
        # The operator leaves the time written once its backoff is at its cap (or the platform
        # asks for the same wait again): the attempts go on at that pace, not rewritten each time.
        ago = render.short_duration(-seconds)
        return f"about every {retry['overdue']} (last written for {retry['at']}, {ago} ago)"
    return f"due now ({retry['at']}): {retry['note']}"


def _conditions(data: dict[str, Any], palette: Palette, moment: datetime) -> str:
    if not data["conditions"]:
        return "Conditions: none yet (the operator has not handled this object)"
    rows = [
        [c["type"], c["status"], c["reason"], render.age(c["lastTransitionTime"], moment), c["message"]]
        for c in data["conditions"]
    ]
    headers = ("TYPE", "STATUS", "REASON", "AGE", "MESSAGE")
    return "Conditions:\n" + render.table(
        headers, rows, palette, _second_column(palette), render.MESSAGE_LIMIT
    )


def _events(data: dict[str, Any], palette: Palette, moment: datetime) -> str:
    if not data["events"]:
        return "Events: none"
    rows = [
        [render.age(e["lastSeen"], moment), e["type"], e["reason"], str(e["count"]), e["message"]]
        for e in data["events"]
    ]
    headers = ("LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE")
    return f"Events (the last {len(rows)}):\n" + render.table(
        headers, rows, palette, _second_column(palette), render.MESSAGE_LIMIT
    )


def _second_column(palette: Palette) -> render.Colour:
    """Colour the status column (a condition's status, an Event's type) and nothing else."""
    return lambda column, cell: palette.status(cell) if column == 1 else cell
