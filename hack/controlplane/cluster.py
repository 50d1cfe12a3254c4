"""Start and stop a real, minimal Kubernetes control plane: etcd plus kube-apiserver on loopback.

What runs is what a cluster runs, minus the controller-manager and scheduler: RBAC authorization,
service-account token signing (so the TokenRequest API works), CRDs with CEL, the status
subresource. There is no garbage collector and no namespace controller, so nothing cascades.

The identities are static bearer tokens: `admin` (group system:masters) for tests and the
operator, `nobody` (no groups beyond system:authenticated) for proving that RBAC denies.
Every child is started in its own session with a parent-death signal, so an interrupted test
run never leaves an API server or etcd behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hack.controlplane.build import ensure_built

READY_TIMEOUT = 90.0
ETCD_DATA = "etcd"  # etcd's data directory, under the state directory


def free_port() -> int:
    """A port free on every local address: the operator serves health and metrics on all of
    them, and a port free on 127.0.0.1 may be taken on 127.0.0.2 (where the tests' hostile
    platforms listen: a full run once failed on that, "Address already in use")."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: the kernel sends SIGTERM to the child when its parent dies.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class ControlPlane:
    """A running control plane; `stop()` ends both processes and removes all state."""

    state_dir: Path
    api_port: int
    admin_token: str
    nobody_token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    detached: bool = False  # started for `make cluster-up`: its children outlive this process

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "ca.crt"

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """Write a kubeconfig that authenticates with `token` (a user, or a ServiceAccount's)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
            "current-context": "local",
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        # The API server first, then etcd: an API server whose etcd is already gone waits out its
        # whole graceful-shutdown period for storage that will never answer.
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()

    def restart_api_server(self, *, kill: bool = False) -> float:
        """Stop kube-apiserver (SIGTERM, or SIGKILL with `kill`) and start it again with the same
        flags, port and etcd (etcd keeps running: every object survives); returns the seconds it
        was unavailable. For `make chaos`."""
        started = time.monotonic()
        old = self.processes[-1]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            old.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(old.pid, signal.SIGKILL)
            old.wait(timeout=5)
        self.processes[-1] = _spawn(_command(old), self.state_dir / "kube-apiserver.log", detached=False)
        (self.state_dir / "pids").write_text(" ".join(str(p.pid) for p in self.processes))
        _wait_ready(self, time.monotonic() + READY_TIMEOUT)
        return time.monotonic() - started

    def wipe(self) -> float:
        """Lose the cluster and get an empty one at the same address: kube-apiserver and etcd are
        SIGKILLed (what they hold is thrown away, so there is nothing to flush), etcd's data
        directory is deleted, and both start again with the same flags, ports, certificates and
        tokens. A kubeconfig or client of this plane keeps working; every object is gone, CRDs
        included (the caller applies them again). Returns the seconds until /readyz answered 200.
        For the rebuild-from-Git tests and `make chaos` (issue 18)."""
        started = time.monotonic()
        commands = [_command(process) for process in self.processes]
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self.processes.clear()
        shutil.rmtree(self.state_dir / ETCD_DATA)
        try:
            for command, log in zip(commands, ("etcd.log", "kube-apiserver.log"), strict=True):
                self.processes.append(_spawn(command, self.state_dir / log, detached=self.detached))
            (self.state_dir / "pids").write_text(" ".join(str(p.pid) for p in self.processes))
            _wait_ready(self, time.monotonic() + READY_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - started


def _command(process: subprocess.Popen[bytes]) -> list[str]:
    assert isinstance(process.args, list), "started by _spawn with a list"
    return [str(arg) for arg in process.args]


def _write_pki(state: Path) -> None:
    """A throwaway CA, a serving certificate for 127.0.0.1, and the service-account signing key."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "open-connectors-operator-local-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    serving_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(serving_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem_key(key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    (state / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (state / "serving.crt").write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    (state / "serving.key").write_bytes(pem_key(serving_key))
    (state / "sa.key").write_bytes(pem_key(sa_key))
    (state / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _spawn(command: list[str], log: Path, *, detached: bool) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # A detached plane (`make cluster-up`) must outlive this process; a test's must not.
            preexec_fn=None if detached else die_with_parent,
        )


def _wait_ready(plane: ControlPlane, deadline: float) -> None:
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    request = urllib.request.Request(  # noqa: S310 - an https URL we built ourselves
        f"{plane.server}/readyz", headers={"Authorization": f"Bearer {plane.admin_token}"}
    )
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        for process in plane.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{_command(process)[0]} exited with {process.returncode}; see {plane.state_dir}/*.log"
                )
        try:
            with urllib.request.urlopen(request, context=context, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError as error:
            last_error = str(error)
        time.sleep(0.2)  # polling interval of a readiness probe, not synchronisation
    raise TimeoutError(f"kube-apiserver not ready after {READY_TIMEOUT:.0f}s: {last_error}")


PORT_ATTEMPTS = 3  # free_port() can race another process taking the port before we bind it


def start(state_dir: Path, *, detached: bool = False) -> ControlPlane:
    """Start etcd and kube-apiserver with state in `state_dir`; return when /readyz answers 200.
    A port taken between `free_port` and the bind (parallel test workers start planes at once)
    means new ports and another try, from empty state."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return _start(state_dir, detached=detached)
        except RuntimeError:
            logs = " ".join(log.read_text(errors="replace") for log in state_dir.glob("*.log"))
            if "address already in use" not in logs or attempt == PORT_ATTEMPTS - 1:
                raise
            shutil.rmtree(state_dir, ignore_errors=True)
    raise AssertionError("unreachable")


def _start(state_dir: Path, *, detached: bool) -> ControlPlane:
    binaries = ensure_built()
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    _write_pki(state_dir)
    admin_token, nobody_token = secrets.token_hex(16), secrets.token_hex(16)
    (state_dir / "tokens.csv").write_text(
        f'{admin_token},admin,admin-uid,"system:masters"\n{nobody_token},nobody,nobody-uid\n'
    )
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    plane = ControlPlane(state_dir, api_port, admin_token, nobody_token, detached=detached)
    try:
        plane.processes.append(
            _spawn(
                [
                    str(binaries / "etcd"),
                    f"--data-dir={state_dir / ETCD_DATA}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync",  # throwaway data: durability costs seconds per test run
                    "--log-level=warn",
                ],
                state_dir / "etcd.log",
                detached=detached,
            )
        )
        plane.processes.append(
            _spawn(
                [
                    str(binaries / "kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={state_dir / 'serving.crt'}",
                    f"--tls-private-key-file={state_dir / 'serving.key'}",
                    f"--client-ca-file={state_dir / 'ca.crt'}",
                    f"--token-auth-file={state_dir / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    f"--service-account-key-file={state_dir / 'sa.pub'}",
                    f"--service-account-signing-key-file={state_dir / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    "--api-audiences=https://kubernetes.default.svc.cluster.local",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    "--allow-privileged=true",
                    f"--cert-dir={state_dir / 'certs'}",
                    "--v=0",
                ],
                state_dir / "kube-apiserver.log",
                detached=detached,
            )
        )
        (state_dir / "pids").write_text(" ".join(str(p.pid) for p in plane.processes))
        plane.kubeconfig_for(admin_token, plane.kubeconfig)
        _wait_ready(plane, time.monotonic() + READY_TIMEOUT)
    except BaseException:
        plane.stop()
        raise
    return plane


def stop_detached(state_dir: Path) -> None:
    """Stop a plane started by another process (`make cluster-down`) and remove its state."""
    pids = state_dir / "pids"
    if pids.is_file():
        for pid in reversed([int(p) for p in pids.read_text().split()]):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for pid in [int(p) for p in pids.read_text().split()]:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)  # waiting for a foreign process to exit: there is nothing to wait on
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(state_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running(state_dir: Path) -> Iterator[ControlPlane]:
    """A control plane for the duration of the block; its state is gone afterwards."""
    shutil.rmtree(state_dir, ignore_errors=True)
    plane = start(state_dir)
    try:
        yield plane
    finally:
        plane.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
