"""A spec change re-runs a blocked delete at once.

kopf retries a failing delete handler after the delay it raised (our backoff, up to five minutes),
and records it as `delayed` in the handler's progress record, `status.kopf.progress.<handler id>`.
Events in between do not shorten it: kopf finds the handler still asleep and sleeps on. So a user
who released a blocked object with `deletionPolicy: Orphan`, or fixed its spec, waited for the
rest of the delay (60-100 s were seen).

Two designs were possible. The delete handler could retry every second and re-check only cheap
local conditions between its platform attempts; but every kopf retry writes the progress record,
so a blocked object would cost a status write (and a watch event) per second, forever. Instead,
when an object being deleted shows a new generation (only a spec change makes one; status writes
and kopf's bookkeeping do not), one status patch removes `delayed` from the record: the watch event
of that patch starts kopf's next cycle, which finds the handler awake and runs it now. A blocked
object stays quiet (no write, no platform call until its delay ends), and a spec change costs one
extra status write. Within one operator process, each generation does this at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.handlers.wakeups import Key
from connector_operator.kube.api import KubeError
from connector_operator.kube.status import StatusWriter

logger = logging.getLogger(__name__)

# kopf's handler id for our delete handler (handlers/instances.py names it explicitly), and where
# kopf keeps handler progress (handlers/setup.py configures it): `status.kopf.progress`.
DELETE_HANDLER = "delete_instance"
PROGRESS_FIELD = ("status", "kopf", "progress")


@dataclass
class DeleteRetries:
    # Per object being deleted: the last generation seen (in this process).
    seen: dict[Key, int] = field(default_factory=dict)

    def forget(self, key: Key) -> None:
        self.seen.pop(key, None)

    async def on_event(self, status: StatusWriter, key: Key, body: Mapping[str, Any]) -> bool:
        """For an event of an object being deleted: wake its delete handler when the spec changed
        since the handler last judged it. True when it did."""
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        # At first sight (deletion just started, or the operator restarted): the generation the
        # delete handler last reported on, which its conditions carry.
        previous = self.seen.get(key, judged_generation(body))
        self.seen[key] = generation
        if generation == previous or not delayed(body):
            return False
        patch = {PROGRESS_FIELD[1]: {PROGRESS_FIELD[2]: {DELETE_HANDLER: {"delayed": None}}}}
        try:
            await status.patch(key[0], key[1], patch)
        except KubeError as error:  # no worse than before: the retry comes when the delay ends
            logger.warning("could not retry the deletion of %s/%s now: HTTP %s", *key, error.status)
            return False
        return True


def judged_generation(body: Mapping[str, Any]) -> int:
    """The newest generation the conditions describe; the current one when there are none."""
    status = body.get("status") or {}
    generations = [int(c.get("observedGeneration") or 0) for c in status.get("conditions") or []]
    return max(generations, default=int((body.get("metadata") or {}).get("generation") or 0))


def delayed(body: Mapping[str, Any]) -> bool:
    """Whether the delete handler waits for a retry (not finished, `delayed` set)."""
    record: Any = body
    for part in (*PROGRESS_FIELD, DELETE_HANDLER):
        record = record.get(part) if isinstance(record, Mapping) else None
    if not isinstance(record, Mapping):
        return False
    return bool(record.get("delayed")) and not record.get("success") and not record.get("failure")
