"""The driver's own access to the API server, over aiohttp, booking every request it makes.

The API server's `apiserver_request_total` has no client label, so the operator's share of the
traffic is what the server counted minus what this driver sent. Every driver request therefore
goes through `KubeClient.call` (or `watch`), which books it under the same (verb, resource) key
the server uses: GET on a collection is LIST, a watch is WATCH (booked when it ends, which is
when the server counts it too).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from connector_operator.api.names import GROUP, PLURAL, VERSION

Key = tuple[str, str]  # (verb as the API server reports it, "resource" or "resource/subresource")

CI_API = f"/apis/{GROUP}/{VERSION}"
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT = 60.0


class KubeError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


def ci_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    path = f"{CI_API}/namespaces/{namespace}/{PLURAL}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def secret_path(namespace: str, name: str | None = None) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


class KubeClient:
    """A bearer-token client for the admin identity; `sent` counts what it did, per (verb, resource)."""

    def __init__(self, server: str, token: str, ca_file: Path, *, connections: int = 64) -> None:
        context = ssl.create_default_context(cafile=str(ca_file))
        self._session = aiohttp.ClientSession(
            base_url=server,
            headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(ssl=context, limit=connections),
            # Watch events carry whole objects (managedFields included): lines longer than 64 KiB.
            read_bufsize=2**20,
        )
        self.sent: Counter[Key] = Counter()

    async def close(self) -> None:
        await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        key: Key,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        allowed: tuple[int, ...] = (200, 201),
    ) -> dict[str, Any]:
        self.sent[key] += 1
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._session.request(
            method,
            path,
            data=data,
            headers=headers,
            params=params,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as response:
            payload = await response.read()
            if response.status not in allowed:
                raise KubeError(response.status, method, path, payload.decode(errors="replace"))
            result: dict[str, Any] = json.loads(payload) if payload else {}
            return result

    @contextlib.asynccontextmanager
    async def watch(self, path: str, resource: str, params: Mapping[str, str]) -> AsyncIterator[Any]:
        """Yield the watch's response stream (JSON lines); the request is booked when it ends."""
        try:
            async with self._session.get(
                path,
                params={**params, "watch": "1"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            ) as response:
                if response.status != 200:
                    body = (await response.read()).decode(errors="replace")
                    raise KubeError(response.status, "WATCH", path, body)
                yield response.content
        finally:
            self.sent[("WATCH", resource)] += 1

    async def metrics_text(self) -> str:
        """`GET /metrics`: a non-resource request, which the attribution leaves out anyway."""
        async with self._session.get("/metrics", timeout=aiohttp.ClientTimeout(total=30)) as response:
            if response.status != 200:
                raise KubeError(response.status, "GET", "/metrics", await response.text())
            return await response.text()

    async def raw_get(self, path: str, params: Mapping[str, str], timeout: float) -> bytes:
        """A non-resource GET returning bytes (a pprof profile); not booked, as `metrics_text`."""
        async with self._session.get(
            path, params=params, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200:
                raise KubeError(response.status, "GET", path, await response.text())
            return await response.read()

    # -- the few typed calls the benchmark needs -------------------------------------------------

    async def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.call("POST", "/api/v1/namespaces", ("POST", "namespaces"), body=body, allowed=(201, 409))

    async def create_secret(
        self,
        namespace: str,
        name: str,
        string_data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "labels": dict(labels or {})},
            "stringData": dict(string_data),
        }
        return await self.call("POST", secret_path(namespace), ("POST", "secrets"), body=body)

    async def patch_secret_data(self, namespace: str, name: str, string_data: Mapping[str, str]) -> None:
        body = {"stringData": dict(string_data)}
        await self.call(
            "PATCH", secret_path(namespace, name), ("PATCH", "secrets"), body=body, content_type=MERGE_PATCH
        )

    async def create_instance(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("POST", ci_path(namespace), ("POST", PLURAL), body=body)

    async def patch_instance_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self.call(
            "PATCH",
            ci_path(namespace, name, "status"),
            ("PATCH", f"{PLURAL}/status"),
            body={"status": dict(status)},
            content_type=MERGE_PATCH,
        )

    async def table(self, path: str, key: Key) -> list[dict[str, Any]]:
        """A LIST as the server's Table (`kubectl get`'s columns): its rows, not the objects, which
        may be big (bench/hostile.py lists 300 objects of 1 MB)."""
        self.sent[key] += 1
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
        async with self._session.get(
            path, headers={"Accept": accept}, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        ) as response:
            payload = await response.read()
            if response.status != 200:
                raise KubeError(response.status, "GET", path, payload.decode(errors="replace"))
            rows: list[dict[str, Any]] = json.loads(payload).get("rows") or []
            return rows

    async def list_instances(self, label_selector: str) -> dict[str, Any]:
        return await self.call(
            "GET", f"{CI_API}/{PLURAL}", ("LIST", PLURAL), params={"labelSelector": label_selector}
        )
