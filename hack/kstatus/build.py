"""Build and cache the kstatus tool (main.go beside this file) with `go build`.

The binary lives outside the checkout, in
`${XDG_CACHE_HOME:-~/.cache}/open-connectors-operator/kstatus/<hash>/kstatus`, keyed by a hash of
go.mod, go.sum and main.go: a changed pin or program rebuilds, an unchanged one is reused at once.
The build never edits go.mod or go.sum (`-mod=readonly`); run `go mod tidy` here after changing them.

    python -m hack.kstatus.build      # build if needed and print the binary's path
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("go.mod", "go.sum", "main.go")
NAME = "kstatus"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "open-connectors-operator"


def source_hash() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def binary() -> Path:
    return cache_root() / NAME / source_hash() / NAME


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "error: the kstatus tool is built from hack/kstatus with Go, but `go` is not on PATH: "
            "install Go 1.24 or newer and retry"
        )
    return go


def ensure_built(*, quiet: bool = False) -> Path:
    """Return the path of the kstatus binary, building it first if it is not cached."""
    target = binary()
    if target.is_file():
        return target
    go = _go()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{NAME}.{os.getpid()}.partial")
    started = time.monotonic()
    if not quiet:
        print(
            f"building {NAME} from {HERE} into {target.parent} (first time only)...",
            file=sys.stderr,
            flush=True,
        )
    command = [
        go,
        "build",
        "-mod=readonly",
        "-buildvcs=false",
        "-trimpath",
        "-ldflags",
        "-s -w",
        "-o",
        str(partial),
        ".",
    ]
    result = subprocess.run(
        command, cwd=HERE, env={**os.environ, "CGO_ENABLED": "0"}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        print(result.stderr.rstrip(), file=sys.stderr)
        raise SystemExit(f"error: building {NAME} failed (go build exited {result.returncode})")
    partial.rename(target)  # atomic: a killed or concurrent build never leaves a half binary
    if not quiet:
        print(f"built {NAME} in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return target


if __name__ == "__main__":
    print(ensure_built())
