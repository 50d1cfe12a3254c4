"""podman, runc and debootstrap: found on PATH, or installed with apt-get when missing.

The image test must run on a fresh machine of the CI's kind (Debian, root, no Docker engine), so
it installs what it needs from Debian's packages, as a new user would. Without root or apt-get it
says what to install instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# Commands, and the Debian packages that bring them. debian-archive-keyring lets debootstrap check
# the archive's signatures; runc because crun refuses some cgroup layouts (podman.py).
COMMANDS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
EXTRA_PACKAGES = ("debian-archive-keyring",)
APT_TIMEOUT = 900


class ToolsMissing(RuntimeError):
    """A command is missing and cannot be installed here."""


def missing() -> list[str]:
    return [command for command in COMMANDS if shutil.which(command) is None]


def ensure_tools(*, quiet: bool = False) -> None:
    """Install the missing commands' packages (apt-get update first), or raise ToolsMissing."""
    absent = missing()
    if not absent:
        return
    packages = [COMMANDS[command] for command in absent] + list(EXTRA_PACKAGES)
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolsMissing(
            f"{', '.join(absent)} not found; install them (Debian: apt-get install {' '.join(packages)}) "
            "and retry"
        )
    if not quiet:
        print(
            f"installing {' '.join(packages)} with apt-get (first time only)...", file=sys.stderr, flush=True
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [apt, "update", "-q"],
        [apt, "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise ToolsMissing(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    still = missing()
    if still:
        raise ToolsMissing(f"{', '.join(still)} still not found after installing {' '.join(packages)}")
