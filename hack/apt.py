"""Debian packages a development tool needs, installed with apt-get when missing (as root).

CI runs `make test` on a fresh Debian machine as root, so the tools the tests need (podman and
friends for the image, Chromium for the consent page) are installed as a new user would install
them. Without root or apt-get the caller's error says what to install instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

APT_TIMEOUT = 900


class PackagesMissing(RuntimeError):
    """Commands are missing and cannot be installed here."""


def install(
    packages: Sequence[str],
    absent: Sequence[str],
    *,
    error: type[PackagesMissing] = PackagesMissing,
    quiet: bool = False,
) -> None:
    """`apt-get update`, then `apt-get install` of `packages` (which bring the `absent` commands);
    the caller's kind of `error` when that cannot be done."""
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise error(
            f"{', '.join(absent)} not found; install them (Debian: apt-get install {' '.join(packages)}) "
            "and retry"
        )
    if not quiet:
        print(f"installing {' '.join(packages)} with apt-get (first time only)", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [apt, "update", "-q"],
        [apt, "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise error(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
