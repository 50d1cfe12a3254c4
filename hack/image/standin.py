"""A stand-in for the Dockerfile's base image, for machines that reach no container registry.

The Dockerfile builds `FROM python:<version>-slim-<suite>` (the official image: Debian `<suite>` with
Python built into /usr/local). Where that image cannot be pulled, this builds the nearest thing
from Debian's own packages: a minimal rootfs (`debootstrap --variant=minbase`), Debian's
`python3.X` with venv and pip, and the names the official image has (`/usr/local/bin/python3`,
`python`, `pip3`, `pip`; PATH, LANG and CMD as there). It is tagged with the exact name the
Dockerfile's FROM uses, so the Dockerfile builds unchanged. Differences that remain: Debian's Python
patch release (3.11.2 for bookworm) instead of the official one, and Debian's paths under /usr.

The image carries a label with a hash of this recipe: it is built once, and again only when the
recipe or the Dockerfile's base changes. Building needs root (debootstrap, chroot) and the Debian
mirror the machine's apt uses.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hack.image.podman import Podman

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RECIPE_LABEL = "io.open-connectors-operator.standin-recipe"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT = 1200

# Run in the chroot after debootstrap: Python with venv and pip, the official image's names, and a
# trim of what a container does not need (apt's lists and cache, documentation, locales).
SETUP = """\
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends python{minor} python{minor}-venv python3-pip ca-certificates
ln -sf /usr/bin/python{minor} /usr/local/bin/python3
ln -sf python3 /usr/local/bin/python
ln -sf /usr/bin/pip3 /usr/local/bin/pip3
ln -sf pip3 /usr/local/bin/pip
# The official image's Python is not Debian-managed: pip may install into it.
rm -f /usr/lib/python{minor}/EXTERNALLY-MANAGED
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* \
    /var/log/* /var/cache/debconf/*-old /tmp/* /etc/resolv.conf
"""
CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


@dataclass(frozen=True)
class Base:
    """The Dockerfile's base image, as its FROM names it."""

    name: str  # fully qualified: docker.io/library/python:3.11.14-slim-bookworm
    python_minor: str  # 3.11
    suite: str  # bookworm

    @classmethod
    def of_dockerfile(cls, dockerfile: Path = DOCKERFILE) -> Base:
        bases = set(re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), re.MULTILINE | re.IGNORECASE))
        if len(bases) != 1:
            raise RuntimeError(
                f"{dockerfile}: expected one base image in its FROM lines, found {sorted(bases)}"
            )
        [name] = bases
        match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)\.\d+-slim-(\w+)", name)
        if match is None:
            raise RuntimeError(
                f"{dockerfile}: no stand-in known for the base {name} (python:X.Y.Z-slim-<suite>)"
            )
        return cls(f"docker.io/library/{name.split('/')[-1]}", match.group(1), match.group(2))

    @property
    def setup(self) -> str:
        return SETUP.format(minor=self.python_minor)

    def recipe_hash(self) -> str:
        digest = hashlib.sha256()
        for part in (self.name, self.suite, self.setup, *CHANGES):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()[:16]


def host_mirror() -> str:
    """The Debian mirror the machine's apt uses (a deb822 or one-line source), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            uri = None
            if line.startswith("URIs:"):
                uri = line.split()[1] if len(line.split()) > 1 else None
            elif line.startswith("deb ") and not line.startswith("deb-src"):
                uri = next((part for part in line.split()[1:] if "://" in part), None)
            if uri and uri.rstrip("/").endswith("/debian"):
                return uri
    return DEFAULT_MIRROR


def ensure_standin(podman: Podman, *, quiet: bool = False) -> bool:
    """Build and tag the stand-in unless the store has it (from this recipe). True if built now."""
    base = Base.of_dockerfile()
    recipe = base.recipe_hash()
    if podman.label(base.name, RECIPE_LABEL) == recipe:
        return False
    if podman.image_exists(base.name) and podman.label(base.name, RECIPE_LABEL) is None:
        return False  # the real base image (pulled into the project's store): use it
    started = time.monotonic()
    workdir = podman.home / f"standin-{recipe}"
    shutil.rmtree(workdir, ignore_errors=True)
    rootfs = workdir / "rootfs"
    rootfs.mkdir(parents=True)
    try:
        mirror = host_mirror()
        if not quiet:
            print(
                f"building a stand-in for {base.name} (Debian {base.suite} from {mirror}, "
                f"Python {base.python_minor}); first time only, about a minute...",
                file=sys.stderr,
                flush=True,
            )
        _run(
            ["debootstrap", "--variant=minbase", base.suite, str(rootfs), mirror], workdir / "debootstrap.log"
        )
        # The chroot resolves the mirror's name as the host does, for apt only; removed by SETUP.
        shutil.copyfile("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
        _run(
            [
                "chroot",
                str(rootfs),
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "sh",
                "-c",
                base.setup,
            ],
            workdir / "setup.log",
        )
        changes = [
            arg for change in (*CHANGES, f"LABEL {RECIPE_LABEL}={recipe}") for arg in ("--change", change)
        ]
        tar = subprocess.Popen(
            [
                "tar",
                "-C",
                str(rootfs),
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-c",
                ".",
            ],
            stdout=subprocess.PIPE,
        )
        assert tar.stdout is not None
        imported = subprocess.run(
            podman.command("import", *changes, "-", base.name),
            env=podman.env,
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError(f"importing the stand-in rootfs failed: {imported.stderr[-2000:]}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not quiet:
        print(
            f"built the stand-in {base.name} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )
    return True


def _run(command: list[str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, timeout=DEBOOTSTRAP_TIMEOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}):\n{log.read_text()[-3000:]}")
