"""The few Kubernetes API calls the operator makes itself, over aiohttp, with kopf's credentials.

kopf does the watching with its own client. For the rest (Secrets, status patches) the official
`kubernetes` package was the obvious choice, but it costs more than it gives here: importing it
loads tens of megabytes of generated models, and kopf imports it too whenever it is installed,
so its mere presence cost about 40 MB of resident memory (112 MB against 70 MB with no objects,
198 MB against 156 MB with 1,000 Ready ones; see bench/README.md).
aiohttp (kopf's own HTTP library, and per request much cheaper in CPU than httpx, which mattered
at 1,000 objects: see bench/README.md) does the job; the package stays a test-only dependency.

The connection is built the way kopf builds its own, from the `kopf.ConnectionInfo` that the
login (kubeconfig or in-cluster ServiceAccount) resolved: `as_ssl_context()` for the CA, the
client certificate and `insecure-skip-tls-verify`; `as_http_headers()` for the bearer token or
basic auth; `proxy_url` (a kubeconfig's `proxy-url`) and `trust_env` for the proxy. So both
clients reach the API server the same way. A client certificate and key given as data are
written by kopf to 0600 temporary files only while `load_cert_chain` reads them (Python's ssl
loads from files only), and deleted right after; nothing of them stays on disk. On a 401 the
credentials are resolved again once (a rotated ServiceAccount token) and the call repeated.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf

MERGE_PATCH = "application/merge-patch+json"
# A watch event is one line of JSON. aiohttp's line reader raised LineTooLong past 512 KiB (a Secret
# with 4,500 labels makes one), which ended the watch; `stream_lines` splits lines itself, and a
# line past this bound is read through and dropped, never held whole. The API server caps a
# Secret's annotations at 256 KiB, so a metadata event beyond twice that is a label flood.
MAX_LINE = 512 * 1024
# What is kept of a line past MAX_LINE: its first bytes, which name the object (an event's metadata
# starts with its name and namespace), so that a label flood wakes only who waits for that Secret.
HEAD = 1024


# How a watch event starts: its object's metadata opens with the name and the namespace (the API
# server's field order), before anything the object's author writes (labels, annotations).
_NAMED = re.compile(
    r'"metadata":\{"name":"([^"]{1,253})"(?:,"generateName":"[^"]*")?,"namespace":"([^"]{1,63})"'
)


@dataclass(frozen=True)
class Skipped:
    """A line longer than the bound, read through and dropped: its first `HEAD` bytes only."""

    head: str

    @property
    def named(self) -> tuple[str, str] | None:
        """(namespace, name) of the event's object, if its first bytes say."""
        found = _NAMED.search(self.head)
        return (found.group(2), found.group(1)) if found is not None else None


Login = Callable[[], kopf.ConnectionInfo | None]


class KubeError(Exception):
    """A Kubernetes API error: status and reason only (a message could quote a Secret's data)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


# Connections for requests (not watches). Each TLS connection holds asyncio's 256 KiB read buffer for
# as long as it is pooled: aiohttp's default of 100 made a creation burst of 1,000 objects hold
# about 25 MiB in buffers alone (bench/README.md). 32 carry the passes' writes at the platform's
# in-flight bound (--max-in-flight, 32) without waiting on each other.
REQUEST_CONNECTIONS = 32


class KubeAPI:
    def __init__(self, login: Login, *, timeout: float = 30.0) -> None:
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None  # watches: a pool of their own
        self._server = ""
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()

    def _resolve(self) -> tuple[kopf.ConnectionInfo, ssl.SSLContext]:
        """Blocking (the login reads files, the SSL context loads certificates): run in a thread."""
        info = self._login()
        if info is None:
            raise KubeError(401, "no Kubernetes credentials found (kubeconfig or in-cluster)")
        return info, info.as_ssl_context()

    async def _connect(self, *, renew: bool = False, stream: bool = False) -> aiohttp.ClientSession:
        """The session for requests (a bounded pool) or for watches (`stream`: one connection per
        watch, for as long as it runs, so that watches never take the requests' connections)."""
        async with self._lock:
            if self._session is None or self._streams is None or renew:
                info, context = await asyncio.to_thread(self._resolve)
                headers = {
                    "Accept": "application/json",
                    "User-Agent": "open-connectors-operator",
                    **info.as_http_headers(),
                }
                old = (self._session, self._streams)
                self._session, self._streams = (
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(ssl=context, limit=limit),
                        headers=headers,
                        proxy=info.proxy_url,
                        trust_env=info.trust_env,
                        timeout=self._timeout,
                    )
                    for limit in (REQUEST_CONNECTIONS, 0)
                )
                self._server = info.server.rstrip("/")
                for session in old:
                    if session is not None:
                        await session.close()
            return self._streams if stream else self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | list[Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> dict[str, Any] | None:
        """One call; None for a 404. Credentials are renewed once on a 401 (rotated tokens)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept is not None:
            headers["Accept"] = accept
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
            except TimeoutError:  # the session's total timeout, waiting for a pooled connection included
                raise KubeError(0, "timed out") from None
            result: dict[str, Any] = json.loads(payload) if payload else {}
            return result
        raise KubeError(401, "Unauthorized")

    @asynccontextmanager
    async def stream_lines(
        self, path: str, params: Mapping[str, str], *, accept: str | None = None, max_line: int = MAX_LINE
    ) -> AsyncIterator[AsyncIterator[str | Skipped]]:
        """A watch: the response's lines as they come, and `Skipped` for a line longer than
        `max_line` bytes, which is read through. `accept` asks for another representation (metadata only, for
        example). The server ends it after the watch's `timeoutSeconds`."""
        session = await self._connect(stream=True)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        headers = {"Accept": accept} if accept else None
        async with session.get(
            self._server + path, params=params, timeout=timeout, headers=headers
        ) as response:
            if response.status >= 400:
                raise KubeError(response.status, response.reason or "")

            yield _lines(response.content, max_line)


async def _lines(content: aiohttp.StreamReader, max_line: int) -> AsyncIterator[str | Skipped]:
    """The lines of a stream, each decoded, or `Skipped` (its head) for one longer than `max_line`
    bytes: no more than `max_line` and one chunk is held, whatever the stream sends. A broken
    stream (the server went away, a bad chunk) is a KubeError, as for `request`."""
    line, head = bytearray(), None  # head: the first bytes of a line found too long
    try:
        async for chunk in content.iter_any():
            *complete, rest = chunk.split(b"\n")
            for piece in complete:
                if head is not None or len(line) + len(piece) > max_line:
                    yield _skipped(head if head is not None else bytes(line) + piece[:HEAD])
                else:
                    line += piece
                    yield line.decode()
                line, head = bytearray(), None
            if head is None:
                line += rest
                if len(line) > max_line:
                    line, head = bytearray(), bytes(line[:HEAD])
    except aiohttp.ClientError as error:
        raise KubeError(0, f"watch broken ({type(error).__name__})") from None
    if head is not None:
        yield _skipped(head)
    elif line:
        yield line.decode()


def _skipped(head: bytes) -> Skipped:
    return Skipped(head[:HEAD].decode(errors="ignore"))
