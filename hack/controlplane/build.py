"""Build and cache the local control plane binaries (kube-apiserver, etcd) from their Go modules.

The wrapper modules beside this file pin the releases (`kube-apiserver/go.mod`, `etcd/go.mod`);
`go install pkg@version` cannot build either because their own modules carry `replace` directives.
Binaries live outside the checkout, in a cache directory keyed by the versions *and* a hash of the
wrapper modules, so a changed pin rebuilds and an unchanged one starts in seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Component:
    name: str
    module_dir: Path
    package: str
    module: str

    @property
    def version(self) -> str:
        text = (self.module_dir / "go.mod").read_text()
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(self.module)}\s+(v\S+)", text, re.MULTILINE)
        if not match:
            raise RuntimeError(f"{self.module} is not required in {self.module_dir / 'go.mod'}")
        return match.group(1)

    def ldflags(self) -> str:
        flags = ["-s", "-w"]
        if self.name == "kube-apiserver":
            # Without these, clients see v0.0.0-master and kubectl warns about version skew.
            major, minor = self.version.lstrip("v").split(".")[:2]
            pkg = "k8s.io/component-base/version"
            flags += [
                f"-X {pkg}.gitVersion={self.version}",
                f"-X {pkg}.gitMajor={major}",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
            ]
        return " ".join(flags)


KUBE_APISERVER = Component(
    "kube-apiserver", HERE / "kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes"
)
ETCD = Component("etcd", HERE / "etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3")
COMPONENTS = (KUBE_APISERVER, ETCD)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "open-connectors-operator"


def cache_dir() -> Path:
    digest = hashlib.sha256()
    for component in COMPONENTS:
        for name in ("go.mod", "go.sum"):
            digest.update((component.module_dir / name).read_bytes())
    key = f"k8s-{KUBE_APISERVER.version}-etcd-{ETCD.version}-{digest.hexdigest()[:12]}"
    return cache_root() / "controlplane" / key


def binary(name: str) -> Path:
    return cache_dir() / name


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "error: the local control plane is built from Go modules, but `go` is not on PATH: "
            "install Go 1.24 or newer (for example `apt-get install golang-go`, or a Go release) and retry"
        )
    return go


def ensure_built(*, quiet: bool = False) -> Path:
    """Return the cache directory holding both binaries, building what is missing."""
    target = cache_dir()
    missing = [c for c in COMPONENTS if not (target / c.name).is_file()]
    if not missing:
        return target
    go = _go()
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    for component in missing:
        out = target / f".{component.name}.partial"
        started = time.monotonic()
        if not quiet:
            print(
                f"building {component.name} {component.version} from Go modules into {target} "
                "(first time only; a few minutes)...",
                file=sys.stderr,
                flush=True,
            )
        command = [go, "build", "-v", "-trimpath", "-ldflags", component.ldflags(), "-o", str(out)]
        _run_with_progress([*command, component.package], component, env, quiet=quiet)
        out.rename(target / component.name)  # atomic: a killed build never leaves a half binary
        if not quiet:
            elapsed = time.monotonic() - started
            print(f"built {component.name} in {elapsed:.0f}s", file=sys.stderr, flush=True)
    return target


HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.19.5"  # go.mod of v3.19 asks for Go 1.24, which the README promises
HELM_KUBE_VERSION = "1.34"  # the client-go minor it is built with, and our control plane's


def ensure_helm(*, quiet: bool = False) -> Path:
    """Build helm with `go install` at a pinned version (it has no replace directives), cached."""
    target = cache_root() / "helm" / f"{HELM_VERSION}-k8s{HELM_KUBE_VERSION}"
    binary = target / "helm"
    if binary.is_file():
        return binary
    go = _go()
    target.mkdir(parents=True, exist_ok=True)
    partial = target / ".partial"
    partial.mkdir(exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOBIN": str(partial), "GOFLAGS": "-mod=mod"}
    if not quiet:
        print(
            f"building helm {HELM_VERSION} from Go modules into {target} (first time only)...",
            file=sys.stderr,
        )
    # Without these, `helm template` assumes Kubernetes 1.20 (helm's Makefile sets them the same way).
    major, minor = HELM_KUBE_VERSION.split(".")
    ldflags = " ".join(
        [f"-s -w -X {HELM_MODULE}/internal/version.version={HELM_VERSION}"]
        + [f"-X {HELM_MODULE}/pkg/{pkg}.k8sVersionMajor={major}" for pkg in ("chartutil", "lint/rules")]
        + [f"-X {HELM_MODULE}/pkg/{pkg}.k8sVersionMinor={minor}" for pkg in ("chartutil", "lint/rules")]
    )
    command = [
        go,
        "install",
        "-v",
        "-trimpath",
        "-ldflags",
        ldflags,
        f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}",
    ]
    helm = Component("helm", target, f"{HELM_MODULE}/cmd/helm", HELM_MODULE)
    _run_with_progress(command, helm, env, quiet=quiet)
    (partial / "helm").rename(binary)
    return binary


def _run_with_progress(command: list[str], component: Component, env: dict[str, str], *, quiet: bool) -> None:
    """Run `go build -v`, condensing its one-line-per-package output into a progress count."""
    process = subprocess.Popen(
        command, cwd=component.module_dir, env=env, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stderr is not None
    tail: list[str] = []
    for count, line in enumerate(process.stderr, start=1):
        tail = [*tail[-40:], line.rstrip()]
        if not quiet and count % 250 == 0:
            print(f"  {component.name}: {count} packages compiled", file=sys.stderr, flush=True)
    if process.wait() != 0:
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"error: building {component.name} failed (go build exited {process.returncode})")
