"""Build and cache promtool, the checker and unit tester of the chart's alert rules.

`python -m hack.promtool` (what `make promtool` calls) prints its path, building it first when it is
missing. The wrapper module `hack/controlplane/promtool/go.mod` pins the Prometheus release and, in
its go.sum, every dependency: `go install github.com/prometheus/prometheus/cmd/promtool@version`
refuses the module, whose go.mod carries `exclude` directives. The binary lives in the same cache
as the control plane and helm, keyed by the version and a hash of the wrapper module, so a changed
pin builds anew and an unchanged one is found in milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from hack.controlplane.build import HERE, Component, _go, _run_with_progress, cache_root

PROMTOOL = Component(
    "promtool",
    HERE / "promtool",
    "github.com/prometheus/prometheus/cmd/promtool",
    "github.com/prometheus/prometheus",
)


def release() -> str:
    """The Prometheus release a module tag stands for: tags are v0.3MM.P for 3.MM.P.

    v0.308.1 is Prometheus 3.8.1, the newest whose go.mod asks for no more than Go 1.24.0, the
    oldest Go the README promises (3.9 asks for 1.24.9, 3.10 for 1.25).
    """
    minor, patch = PROMTOOL.version.removeprefix("v0.").split(".")[:2]
    return f"{int(minor) // 100}.{int(minor) % 100}.{patch}"


def cached_path() -> Path:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((PROMTOOL.module_dir / name).read_bytes())
    return cache_root() / "promtool" / f"{PROMTOOL.version}-{digest.hexdigest()[:12]}" / "promtool"


def ensure_promtool(*, quiet: bool = False) -> Path:
    """Return the cached promtool, building it when it is missing."""
    binary = cached_path()
    if binary.is_file():
        return binary
    go = _go()
    binary.parent.mkdir(parents=True, exist_ok=True)
    # An output name of this build's own: pytest workers that find no binary may build at once,
    # and each renames only its own complete result into place.
    handle, partial = tempfile.mkstemp(prefix=".promtool-", suffix=".partial", dir=binary.parent)
    os.close(handle)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    started = time.monotonic()
    if not quiet:
        print(
            f"building promtool {release()} from Go modules into {binary.parent} "
            "(first time only; a few minutes)...",
            file=sys.stderr,
            flush=True,
        )
    # What Prometheus' own release build stamps, so that `promtool --version` names the release.
    version_pkg = "github.com/prometheus/common/version"
    ldflags = f"-s -w -X {version_pkg}.Version={release()} -X {version_pkg}.Branch=HEAD"
    command = [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", partial, PROMTOOL.package]
    try:
        _run_with_progress(command, PROMTOOL, env, quiet=quiet)
        Path(partial).rename(binary)  # atomic: a killed build never leaves a half binary
    finally:
        Path(partial).unlink(missing_ok=True)
    if not quiet:
        print(f"built promtool in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return binary


if __name__ == "__main__":
    print(ensure_promtool())
