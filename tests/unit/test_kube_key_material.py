"""A client certificate and key given as data (a kubeconfig's `client-key-data`) stay off disk.

Python's ssl loads a key from a file only, so `kube.api.KubeAPI` (through kopf's
`ConnectionInfo.as_ssl_context()`) may write one for the moment `load_cert_chain` reads it, and
must delete it right after. The test points the temporary directory at a private one, connects to
a TLS server on loopback that requires a client certificate from a throwaway CA (so the key is
really loaded and presented), and checks that every file `load_cert_chain` read was private while
it existed and is gone afterwards, and that the temporary directory is empty again.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import socket
import ssl
import stat
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector_operator.kube.api import KubeAPI

CLIENT_NAME = "oco-test-client"


@dataclass(frozen=True)
class Pki:
    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes


def _pki() -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(name: str, *extensions: x509.ExtensionType) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pem_key = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), pem_key

    server_cert, server_key = issue(
        "server", x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    )
    client_cert, client_key = issue(CLIENT_NAME)
    return Pki(ca.public_bytes(serialization.Encoding.PEM), server_cert, server_key, client_cert, client_key)


@pytest.fixture
def pki() -> Pki:
    return _pki()


def leftovers(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's directory for this test only (0700), empty at the start."""
    path = tmp_path / "tmp"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
async def mtls_server(pki: Pki, tmp_path: Path) -> AsyncIterator[str]:
    """An HTTPS server on loopback that requires a client certificate and answers with its name."""
    server_dir = tmp_path / "server"
    server_dir.mkdir(mode=0o700)
    (server_dir / "cert.pem").write_bytes(pki.server_cert)
    (server_dir / "key.pem").write_bytes(pki.server_key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(server_dir / "cert.pem", server_dir / "key.pem")

    async def whoami(request: web.Request) -> web.Response:
        peer: Any = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(item for rdn in peer["subject"] for item in rdn) if peer else {}
        return web.json_response({"commonName": subject.get("commonName")})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def test_client_key_data_is_used_and_leaves_nothing_on_disk(
    pki: Pki, mtls_server: str, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[tuple[Path, int]] = []  # every file load_cert_chain read, with its mode then
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None) -> None:
        for name in (certfile, keyfile):
            if name is not None:
                path = Path(os.fsdecode(name))
                loaded.append((path, stat.S_IMODE(path.stat().st_mode)))
        original(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    info = kopf.ConnectionInfo(
        server=mtls_server,
        ca_data=b64(pki.ca),
        certificate_data=b64(pki.client_cert),
        private_key_data=b64(pki.client_key),
    )
    api = KubeAPI(lambda: info)
    try:
        answer = await api.request("GET", "/whoami")
        assert answer == {"commonName": CLIENT_NAME}  # the key was loaded and presented
        assert leftovers(private_tmp) == []  # while the client is alive, not only after
    finally:
        await api.aclose()

    assert loaded, "load_cert_chain was never called"
    for path, mode in loaded:
        assert mode & 0o077 == 0, f"{path} was readable by others ({mode:o})"
        assert not path.exists(), f"{path} outlived loading"
    assert leftovers(private_tmp) == []
