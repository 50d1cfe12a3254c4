"""The previous release, from its git commit: a worktree of it, and its image built by its own tools.

The release resolves to a commit through hack/releases.py (its tag, else its CHANGELOG entry: a CI
clone may lack tags). `worktree` checks that commit out detached in a temporary directory and
removes it again, also when the test fails. `ensure_release_image` builds the worktree's Dockerfile
with the worktree's own hack/image (the release's `make image` machinery, its Dockerfile and
stand-in recipe) into the project's podman store, as `localhost/open-connectors-operator:vX.Y.Z`.
The image is labelled with the commit it was built from (`org.opencontainers.image.revision`), so a
later run reuses it when the label matches and rebuilds it when the tag names another commit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hack.image.build import REPOSITORY
from hack.image.podman import Podman
from hack.releases import commit_of, previous_release

ROOT = Path(__file__).resolve().parents[2]
REVISION_LABEL = "org.opencontainers.image.revision"
BUILD_TIMEOUT = 1800

# Run by the worktree's Python path: the release's own build (hack/image/build.py of that commit),
# on podman with the project's store; the same call its `make image` makes without a Docker engine.
BUILD = """\
import pathlib, sys
from hack.image import standin
from hack.image.build import build_with_podman
assert standin.ROOT == pathlib.Path.cwd().resolve(), f"not the release's hack: {standin.ROOT}"
from hack.image.podman import Podman
from hack.image.tools import ensure_tools
ensure_tools()
print(f"{build_with_podman(Podman.default(), sys.argv[1]):.0f}")
"""


@dataclass(frozen=True)
class Release:
    """A release checked out: its version, commit and worktree."""

    version: str
    commit: str
    tree: Path

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def image(self) -> str:
        return f"{REPOSITORY}:{self.tag}"

    @property
    def chart(self) -> Path:
        return self.tree / "charts" / "open-connectors-operator"


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=300, check=False
    )


@contextlib.contextmanager
def worktree(version: str | None = None) -> Iterator[Release]:
    """The release (default: the newest below the working tree's version) as a detached worktree
    in a temporary directory, removed afterwards (and pruned from git's list of worktrees)."""
    version = version or previous_release()
    commit = commit_of(version)
    with tempfile.TemporaryDirectory(prefix=f"oco-release-{version}-") as scratch:
        tree = Path(scratch) / "tree"
        added = _git("worktree", "add", "--detach", str(tree), commit)
        assert added.returncode == 0, added.stderr
        try:
            yield Release(version, commit, tree)
        finally:
            removed = _git("worktree", "remove", "--force", str(tree))
            if removed.returncode != 0:  # the directory goes with the TemporaryDirectory anyway
                _git("worktree", "prune")


def ensure_release_image(podman: Podman, release: Release) -> float | None:
    """Build the release's image unless the store has it from the same commit; returns the seconds
    building took (None: reused)."""
    if podman.label(release.image, REVISION_LABEL) == release.commit:
        return None
    started = time.monotonic()
    # The worktree's directory first on the path: `hack` is the release's own.
    built = subprocess.run(
        [sys.executable, "-c", BUILD, release.image],
        cwd=release.tree,
        env={**os.environ, "PYTHONPATH": str(release.tree)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"building {release.image} failed:\n{(built.stdout + built.stderr)[-4000:]}")
    with podman.lock():  # its prune must not meet another process's build half way
        _label(podman, release)
    return time.monotonic() - started


def _label(podman: Podman, release: Release) -> None:
    """The built image again, with the commit as a label: an image whose only change is its
    configuration (no layer), under the same tag. The release's build script takes no labels."""
    with tempfile.TemporaryDirectory(prefix="oco-label-") as context:
        containerfile = Path(context) / "Containerfile"
        containerfile.write_text(
            f"FROM {release.image}\n"
            f'LABEL {REVISION_LABEL}="{release.commit}" '
            f'org.opencontainers.image.version="{release.version}"\n'
        )
        podman.run(
            "build", "--pull=never", "--network", "none", "--tag", release.image,
            "--file", str(containerfile), context,
        )  # fmt: skip
    podman.run("image", "prune", "--force", check=False)
