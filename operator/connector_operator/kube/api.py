"""The few Kubernetes API calls the operator makes itself, over aiohttp, with kopf's credentials.

kopf does the watching with its own client. For the rest (Secrets, status patches) the official
`kubernetes` package was the obvious choice, but it costs more than it gives here: importing it
loads tens of megabytes of generated models, and kopf imports it too whenever it is installed,
so its mere presence made the operator's memory floor about 90 MB higher (see bench/README.md).
A few lines of aiohttp (kopf's own HTTP library, and per request much cheaper in CPU than httpx,
which mattered at 1,000 objects: see bench/README.md) with the credentials kopf already resolved
(kubeconfig or in-cluster ServiceAccount, renewed on 401) do the job; the package stays a
test-only dependency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiohttp

MERGE_PATCH = "application/merge-patch+json"
StrPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]


class ConnectionInfo(Protocol):
    """The fields of kopf.ConnectionInfo used here (structural: this layer needs no kopf)."""

    @property
    def server(self) -> str: ...
    @property
    def insecure(self) -> bool | None: ...
    @property
    def scheme(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ca_path(self) -> StrPath | None: ...
    @property
    def ca_data(self) -> str | bytes | None: ...
    @property
    def certificate_path(self) -> StrPath | None: ...
    @property
    def certificate_data(self) -> str | bytes | None: ...
    @property
    def private_key_path(self) -> StrPath | None: ...
    @property
    def private_key_data(self) -> str | bytes | None: ...


Login = Callable[[], ConnectionInfo | None]


class KubeError(Exception):
    """A Kubernetes API error: status and reason only (a message could quote a Secret's data)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


def _ssl_context(info: ConnectionInfo, scratch: Path) -> ssl.SSLContext | bool:
    """False turns verification off (an insecure kubeconfig); else a context with CA and client cert."""
    if info.insecure:
        return False
    context = ssl.create_default_context(cafile=os.fsdecode(info.ca_path) if info.ca_path else None)
    if info.ca_data:
        context.load_verify_locations(cadata=_text(info.ca_data))
    certificate = os.fsdecode(info.certificate_path) if info.certificate_path else None
    key = os.fsdecode(info.private_key_path) if info.private_key_path else None
    if info.certificate_data and info.private_key_data:
        # load_cert_chain takes files only; they live in a private temporary directory.
        certificate, key = str(scratch / "client.crt"), str(scratch / "client.key")
        Path(certificate).write_bytes(_bytes(info.certificate_data))
        Path(key).write_bytes(_bytes(info.private_key_data))
    if certificate and key:
        context.load_cert_chain(certificate, key)
    return context


def _bytes(value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode()
    return data if data.lstrip().startswith(b"-----") else base64.b64decode(data)


def _text(value: str | bytes) -> str:
    return _bytes(value).decode()


class KubeAPI:
    def __init__(self, login: Login, *, timeout: float = 30.0) -> None:
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._lock = asyncio.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="oco-kube-")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._scratch.cleanup()

    async def _connect(self, *, renew: bool = False) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is not None and not renew:
                return self._session
            info = await asyncio.to_thread(self._login)
            if info is None:
                raise KubeError(401, "no Kubernetes credentials found (kubeconfig or in-cluster)")
            headers = {"Accept": "application/json", "User-Agent": "open-connectors-operator"}
            auth = None
            if info.token:
                headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
            elif info.username and info.password:
                auth = aiohttp.BasicAuth(info.username, info.password)
            connector = aiohttp.TCPConnector(ssl=_ssl_context(info, Path(self._scratch.name)))
            old, self._session = (
                self._session,
                aiohttp.ClientSession(headers=headers, auth=auth, connector=connector, timeout=self._timeout),
            )
            self._server = info.server.rstrip("/")
            if old is not None:
                await old.close()
            return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        """One call; None for a 404. Credentials are renewed once on a 401 (rotated tokens)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        for renew in (False, True):
            session = await self._connect(renew=renew)
            try:
                async with session.request(
                    method, self._server + path, data=data, params=params, headers=headers
                ) as response:
                    if response.status == 401 and not renew:
                        continue
                    if response.status == 404:
                        return None
                    if response.status >= 400:
                        raise KubeError(response.status, response.reason or "")
                    payload = await response.read()
            except aiohttp.ClientError as error:
                # Only the type: the message could carry the URL, never a secret, but keep it short.
                raise KubeError(0, f"connection failed ({type(error).__name__})") from None
            result: dict[str, Any] = json.loads(payload) if payload else {}
            return result
        raise KubeError(401, "Unauthorized")

    @asynccontextmanager
    async def stream_lines(self, path: str, params: Mapping[str, str]) -> AsyncIterator[AsyncIterator[str]]:
        session = await self._connect()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with session.get(self._server + path, params=params, timeout=timeout) as response:
            if response.status >= 400:
                raise KubeError(response.status, response.reason or "")

            async def lines() -> AsyncIterator[str]:
                async for line in response.content:
                    yield line.decode()

            yield lines()
