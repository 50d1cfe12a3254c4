"""Which object a log line is about, for every line, including the API client's.

kopf prefixes `[namespace/name]` (text) or adds an `object` field (JSON) to records carrying a
`k8s_ref`. Each pass over a ConnectorInstance sets `current_object` for its own task (context
variables are per asyncio task), and a filter on the log handlers stamps it on every record
logged inside that task, so module loggers need no adapter threaded through every call.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

current_object: ContextVar[dict[str, Any] | None] = ContextVar("current_object", default=None)


def bind(namespace: str, name: str, uid: str) -> None:
    current_object.set(
        {"apiVersion": "openconnectors.io/v1beta1", "kind": "ConnectorInstance", "namespace": namespace,
         "name": name, "uid": uid}
    )  # fmt: skip


class ObjectRefFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ref = current_object.get()
        if ref is not None and not hasattr(record, "k8s_ref"):
            record.k8s_ref = ref
        return True


def install() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(ObjectRefFilter())
