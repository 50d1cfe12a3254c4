"""The chart's egress settings, as the operator process lives them (issue 9, finding 14).

A corporate network in miniature: the platform's production host name is reachable only through
an HTTPS proxy that inspects TLS, presenting certificates of its own CA. The operator gets the
environment the chart renders (its allowlist and https-only defaults, the CA bundle's
SSL_CERT_FILE and an HTTPS_PROXY from `extraEnv`) and must reach the platform, the simulator
behind the proxy, through it; its Kubernetes calls must not go through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from hack.processes import OperatorLauncher
from tests.chart.support import deployment_env
from tests.fixtures.operator import Instances, wait_until
from tests.fixtures.simulator import SimulatorHandle
from tests.integration.support import closeio_spec, ready_inputs

# A production-like host: inside the chart's default allowlist, resolvable by no one but the proxy.
PLATFORM_HOST = "api.openconnectors.proxytest.ext.hana.ondemand.com"
PLATFORM_URL = f"https://{PLATFORM_HOST}/elements/api-v2"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def inspecting_ca(tmp_path: Path, host: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA (its PEM written for SSL_CERT_FILE) and a server context for `host`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name("inspecting proxy CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )

    ca_cert = certificate("inspecting proxy CA", ca_key, True).sign(ca_key, hashes.SHA256())
    leaf = (
        certificate(host, leaf_key, False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "corporate-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "leaf.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return ca_file, context


class InspectingProxy:
    """An HTTP CONNECT proxy that terminates the tunnelled TLS with its own certificate and
    forwards the plain HTTP to `upstream`, as a TLS-inspecting corporate proxy does. It runs its
    own event loop in a thread and records every CONNECT target."""

    def __init__(self, upstream: str, context: ssl.SSLContext) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._context = context
        self.connects: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> InspectingProxy:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._tunnel, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ssl.SSLError):
            method, target, _ = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0].decode().split(" ")
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            self.connects.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self._context)
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


EGRESS = ("OCO_ALLOWED_API_HOSTS", "OCO_ALLOW_INSECURE_HTTP", "SSL_CERT_FILE", "HTTPS_PROXY")


def chart_environment(*values: str) -> dict[str, str]:
    """What the chart sets for the operator's egress (the rest concerns a pod, not this test)."""
    return {name: value for name, value in deployment_env(*values).items() if name in EGRESS}


@contextlib.contextmanager
def operator_with(
    env: dict[str, str], kubeconfig: Path, namespace: str, simulator: SimulatorHandle, log: Path
) -> Iterator[None]:
    # The test launcher allows the simulator's plain-http loopback address (LOCAL_PLATFORM);
    # flags win over the environment, so the chart's allowlist and https-only defaults are
    # passed again as flags: the operator runs with exactly what the chart configures.
    launched = OperatorLauncher(
        log_path=log,
        kubeconfig=kubeconfig,
        api_url=simulator.api_url,
        namespaces=[namespace],
        args=[
            f"--allowed-api-hosts={env['OCO_ALLOWED_API_HOSTS']}",
            "--allow-insecure-http"
            if env["OCO_ALLOW_INSECURE_HTTP"] == "true"
            else "--no-allow-insecure-http",
        ],
        metrics_port=0,
        env=env,
        timeout=30,
    ).start()
    try:
        yield
    finally:
        launched.stop()


def test_the_operator_reaches_the_platform_through_a_proxy_that_only_the_ca_bundle_makes_trusted(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    crd: None,
    namespace: str,
    simulator: SimulatorHandle,
    tmp_path: Path,
) -> None:
    ca_file, context = inspecting_ca(tmp_path, PLATFORM_HOST)
    instances = Instances(api_client, namespace)
    ready_inputs(core, namespace, simulator)
    with InspectingProxy(simulator.base_url, context) as proxy:
        proxied = (
            "--set",
            "extraEnv[0].name=HTTPS_PROXY",
            "--set",
            f"extraEnv[0].value=http://127.0.0.1:{proxy.port}",
        )
        without_bundle = chart_environment(*proxied)
        with_bundle = chart_environment(*proxied, "--set", "operator.caBundle.configMapName=corporate-ca")
        # The kubelet mounts the ConfigMap at the path the chart names; here the file is local.
        with_bundle["SSL_CERT_FILE"] = str(ca_file)

        with operator_with(
            without_bundle, control_plane.kubeconfig, namespace, simulator, tmp_path / "a.log"
        ):
            instances.create("untrusted", closeio_spec(apiURL=PLATFORM_URL))
            condition = wait_until(
                lambda: (
                    "certificate" in instances.condition("untrusted", "Ready").get("message", "").lower()
                    and instances.condition("untrusted", "Ready")
                ),
                what="the proxy's certificate to be refused without the CA bundle",
            )
            assert condition["status"] == "False"
            instances.patch_spec("untrusted", {"deletionPolicy": "Orphan"})
            instances.delete("untrusted")
            instances.wait_gone("untrusted")
        assert proxy.connects, "the operator did not use HTTPS_PROXY"

        proxy.connects.clear()
        with operator_with(with_bundle, control_plane.kubeconfig, namespace, simulator, tmp_path / "b.log"):
            instances.create("crm", closeio_spec(apiURL=PLATFORM_URL))
            instances.wait_ready("crm")
        # Only platform traffic took the proxy; the Kubernetes API was reached directly.
        assert set(proxy.connects) == {f"{PLATFORM_HOST}:443"}
