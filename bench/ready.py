"""Observing readiness: one cluster-wide watch on ConnectorInstances of one benchmark set.

Ready means the `Ready` condition is `True`, as any client (kubectl wait, kstatus) would read it.
The tracker records the first moment each object is seen Ready, which gives both the time to
all Ready and the Ready-over-time curve. The same tracker observes the floor and the operator,
so both pay the same observation cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

from bench.kube import CI_API, KubeClient, KubeError
from connector_operator.api.names import PLURAL

WATCH_SERVER_TIMEOUT = "1800"


class _Gone(Exception):
    """The resourceVersion is too old (HTTP 410): list again."""


def is_ready(obj: Mapping[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class ReadyTracker:
    """Watches objects matching `label_selector`; `ready_at[ns/name]` is when each was first Ready."""

    def __init__(self, kube: KubeClient, label_selector: str, expected: int) -> None:
        self.kube = kube
        self.selector = label_selector
        self.expected = expected
        self.ready_at: dict[str, float] = {}
        self._listed = asyncio.Event()
        self._all_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadyTracker:
        self._task = asyncio.create_task(self._run())
        listed = asyncio.ensure_future(self._listed.wait())
        # The watch must be in place before the clock starts; a failing task must not hang us.
        await asyncio.wait([listed, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            listed.cancel()
            self._task.result()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_all(self, timeout: float) -> bool:
        """True when all `expected` objects are Ready within `timeout` seconds."""
        assert self._task is not None
        done = asyncio.ensure_future(self._all_ready.wait())
        finished, _ = await asyncio.wait(
            [done, self._task], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if self._task in finished:
            done.cancel()
            self._task.result()  # re-raises the watch's failure
        if done not in finished:
            done.cancel()
            return False
        return True

    def _observe(self, obj: Mapping[str, Any]) -> None:
        key = object_key(obj)
        if key not in self.ready_at and is_ready(obj):
            self.ready_at[key] = time.monotonic()
            if len(self.ready_at) >= self.expected:
                self._all_ready.set()

    async def _run(self) -> None:
        version = await self._list()
        while True:
            try:
                version = await self._watch(version)
            except _Gone:
                version = await self._list()

    async def _list(self) -> str:
        listing = await self.kube.list_instances(self.selector)
        for item in listing.get("items") or []:
            self._observe(item)
        self._listed.set()
        return str(listing["metadata"]["resourceVersion"])

    async def _watch(self, version: str) -> str:
        params = {
            "labelSelector": self.selector,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SERVER_TIMEOUT,
        }
        try:
            async with self.kube.watch(f"{CI_API}/{PLURAL}", PLURAL, params) as stream:
                async for line in stream:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            raise _Gone
                        raise RuntimeError(f"watch error: {obj.get('message')}")
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._observe(obj)
        except KubeError as error:
            if error.status == 410:
                raise _Gone from None
            raise
        return version

    def curve(self, t0: float) -> list[tuple[float, int]]:
        """(seconds since t0, objects Ready by then), one point per object."""
        return [(round(t - t0, 3), i) for i, t in enumerate(sorted(self.ready_at.values()), start=1)]
