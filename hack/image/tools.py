"""podman, runc and debootstrap: found on PATH, or installed with apt-get when missing.

The image test must run on a fresh machine of the CI's kind (Debian, root, no Docker engine), so
it installs what it needs from Debian's packages, as a new user would. Without root or apt-get it
says what to install instead.
"""

from __future__ import annotations

import shutil

from hack import apt

# Commands, and the Debian packages that bring them. debian-archive-keyring lets debootstrap check
# the archive's signatures; runc because crun refuses some cgroup layouts (podman.py).
COMMANDS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
EXTRA_PACKAGES = ("debian-archive-keyring",)


class ToolsMissing(apt.PackagesMissing):
    """A command is missing and cannot be installed here."""


def missing() -> list[str]:
    return [command for command in COMMANDS if shutil.which(command) is None]


def ensure_tools(*, quiet: bool = False) -> None:
    """Install the missing commands' packages (apt-get update first), or raise ToolsMissing."""
    absent = missing()
    if not absent:
        return
    packages = [COMMANDS[command] for command in absent] + list(EXTRA_PACKAGES)
    apt.install(packages, absent, error=ToolsMissing, quiet=quiet)
    still = missing()
    if still:
        raise ToolsMissing(f"{', '.join(still)} still not found after installing {' '.join(packages)}")
