"""A kubeconfig's `proxy-url` is honoured by the operator's own Kubernetes client, as by kopf's.

The kubeconfig names the API server `kubernetes.default.svc` (in its serving certificate, but
resolvable nowhere on this machine) and sets `proxy-url` to a CONNECT proxy on loopback that
knows where that name lives, like a bastion in front of a private cluster. So the API server is
reachable only through the proxy; the proxy records every tunnel it opens. Covers
`kube.api.KubeAPI` with kopf's kubeconfig login in-process, and the operator process end to end
(its status writes and token Secret go through `KubeAPI`; kopf's watches through kopf's client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
from kubernetes import client

from connector_operator.kube.api import KubeAPI
from hack.controlplane.cluster import ControlPlane
from tests.fixtures.operator import Instances, OperatorProcess
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import create_ready, secret_data

API_HOST = "kubernetes.default.svc"


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1, in a thread with its own event loop.

    `targets` lists the `host:port` of every tunnel opened, in order; `hosts` maps names the
    proxy resolves itself (an /etc/hosts of the proxy's own)."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.targets: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="connect-proxy", daemon=True)
        self._tunnels: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tunnels:
            task.cancel()
        await asyncio.gather(*self._tunnels, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tunnels.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.targets.append(target)
            host, port = target.rsplit(":", 1)
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.hosts.get(host, host), int(port)
            )
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            try:
                await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
            finally:
                upstream_writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            self._tunnels.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy({API_HOST: "127.0.0.1"}) as running:
        yield running


def proxied_kubeconfig(control_plane: ControlPlane, proxy: ConnectProxy, path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "behind-proxy",
                "cluster": {
                    "server": f"https://{API_HOST}:{control_plane.api_port}",
                    "certificate-authority": str(control_plane.ca_file),
                    "proxy-url": proxy.url,
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": control_plane.admin_token}}],
        "contexts": [{"name": "behind-proxy", "context": {"cluster": "behind-proxy", "user": "admin"}}],
        "current-context": "behind-proxy",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


async def test_kube_api_reaches_the_api_server_through_the_kubeconfig_proxy(
    control_plane: ControlPlane,
    namespace: str,
    proxy: ConnectProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(proxied_kubeconfig(control_plane, proxy, tmp_path / "kubeconfig")))
    api = KubeAPI(lambda: kopf.login_with_kubeconfig(settings=kopf.OperatorSettings()))
    try:
        found = await api.request("GET", f"/api/v1/namespaces/{namespace}")
        missing = await api.request("GET", f"/api/v1/namespaces/{namespace}/secrets/none-such")
    finally:
        await api.aclose()

    assert found is not None
    assert found["metadata"]["name"] == namespace
    assert missing is None
    # One tunnel, kept alive for both calls, to the API server by the kubeconfig's name for it.
    assert proxy.targets == [f"{API_HOST}:{control_plane.api_port}"]


def test_operator_reaches_the_api_server_through_the_kubeconfig_proxy(
    control_plane: ControlPlane,
    proxy: ConnectProxy,
    instances: Instances,
    core: client.CoreV1Api,
    namespace: str,
    simulator: SimulatorHandle,
    tmp_path: Path,
) -> None:
    kubeconfig = proxied_kubeconfig(control_plane, proxy, tmp_path / "kubeconfig")
    operator = OperatorProcess(kubeconfig, namespace, simulator.api_url, tmp_path / "operator.log")
    try:
        operator.start()
        # Ready is a status write and the token Secret a create, both by the operator's KubeAPI.
        create_ready(instances, core, namespace, simulator)
        token = secret_data(core, namespace, "crm-token")
    finally:
        operator.stop()

    assert token is not None
    assert token["token"]
    assert proxy.targets
    assert set(proxy.targets) == {f"{API_HOST}:{control_plane.api_port}"}
