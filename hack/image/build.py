"""Build the operator's image from the Dockerfile, unchanged: with Docker when an engine answers,
else with the project's podman (podman.py) on the base image or its stand-in (standin.py).

pip inside the build must trust what the host trusts (behind a TLS-inspecting proxy, its CA) and use
the host's pip configuration (an index mirror, a timeout). Both are mounted into the build steps
only (`podman build --volume`), never copied into an image layer: the host's CA bundle at its own
path, and one pip.conf at /etc/pip.conf merged from `pip config list` (files and PIP_* variables),
naming that bundle.

Tags: `make image` builds `open-connectors-operator:dev`; the image test builds
`open-connectors-operator:ctx-<hash>`, a hash of everything the Dockerfile copies, so an unchanged
tree reuses its image and any change builds a new one (the two newest are kept).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hack.image.podman import Podman
from hack.image.standin import ROOT, ensure_standin
from hack.image.tools import ensure_tools

REPOSITORY = "localhost/open-connectors-operator"
DEV_TAG = f"{REPOSITORY}:dev"
CONTEXT_TAG_PREFIX = "ctx-"
KEEP_CONTEXT_IMAGES = 2
# What the Dockerfile copies into the image (COPY lines), the inputs of the context hash.
CONTEXT = (
    "Dockerfile",
    "requirements-runtime.lock",
    "pyproject.toml",
    "README.md",
    "operator/connector_operator",
)
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_TIMEOUT = 1800


def docker_engine() -> str | None:
    """The docker command when a Docker engine answers (a client alone is not enough)."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    return docker if probe.returncode == 0 else None


def context_hash() -> str:
    digest = hashlib.sha256()
    for name in CONTEXT:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(ROOT)
            if "__pycache__" in relative.parts or any(part.endswith(".egg-info") for part in relative.parts):
                continue  # never part of the installed package
            digest.update(str(relative).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def pip_settings() -> tuple[str, str | None]:
    """The host's pip configuration as one pip.conf, and the CA bundle it names (None: none found)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout
    sections: dict[str, dict[str, str]] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        section, _, option = key.rpartition(".")
        if not option or not value:
            continue
        section = "global" if section in ("", ":env:") else section
        sections.setdefault(section, {})[option] = value.strip().strip("'\"")
    ca = sections.get("global", {}).get("cert") or os.environ.get("SSL_CERT_FILE") or DEFAULT_CA_BUNDLE
    if not Path(ca).is_file():
        return _ini(sections), None
    sections.setdefault("global", {})["cert"] = ca
    return _ini(sections), ca


def _ini(sections: dict[str, dict[str, str]]) -> str:
    lines = ["# The host's pip configuration, mounted into the build steps only (hack/image/build.py)."]
    for section, options in sections.items():
        lines += [f"[{section}]", *(f"{option} = {value}" for option, value in options.items())]
    return "\n".join(lines) + "\n"


def build_with_podman(podman: Podman, tag: str, *, quiet: bool = False) -> float:
    """Build `tag`; returns the seconds it took (the stand-in base included when it was built)."""
    started = time.monotonic()
    with podman.lock():
        ensure_standin(podman, quiet=quiet)
        config, ca = pip_settings()
        with tempfile.TemporaryDirectory(prefix="oco-build-") as scratch:
            pip_conf = Path(scratch) / "pip.conf"
            pip_conf.write_text(config)
            pip_conf.chmod(0o644)
            mounts = ["--volume", f"{pip_conf}:/etc/pip.conf:ro"]
            if ca is not None:
                mounts += ["--volume", f"{ca}:{ca}:ro"]
            command = [
                "build", "--pull=never", "--network", "host", *mounts,
                "--tag", tag, "--file", str(ROOT / "Dockerfile"), str(ROOT),
            ]  # fmt: skip
            done = podman.run(*command, check=False, timeout=BUILD_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(
                f"podman build failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}"
            )
        # The build stage's image stays behind untagged: nothing else uses it.
        podman.run("image", "prune", "--force", check=False)
    return time.monotonic() - started


def ensure_context_image(podman: Podman, *, quiet: bool = False) -> tuple[str, float | None]:
    """The image of the tree as it is now, built unless this context was built before; returns its
    tag and the seconds building took (None: it existed)."""
    tag = f"{REPOSITORY}:{CONTEXT_TAG_PREFIX}{context_hash()}"
    if podman.image_exists(tag):
        return tag, None
    seconds = build_with_podman(podman, tag, quiet=quiet)
    _prune_context_images(podman, keep=tag)
    return tag, seconds


def _prune_context_images(podman: Podman, keep: str) -> None:
    listed = podman.run(
        "images", "--filter", f"reference={REPOSITORY}:{CONTEXT_TAG_PREFIX}*",
        "--format", "{{.Repository}}:{{.Tag}} {{.CreatedAt}}",
    ).stdout.split("\n")  # fmt: skip
    tags = sorted(
        (line.split(" ", 1) for line in listed if line.strip()), key=lambda row: row[1], reverse=True
    )
    for name, _ in tags[KEEP_CONTEXT_IMAGES:]:
        if name != keep:
            podman.run("rmi", name, check=False)


def build(tag: str = DEV_TAG) -> str:
    """`make image`: the image as `tag`, with Docker if an engine answers, else podman."""
    docker = docker_engine()
    if docker is not None:
        subprocess.run([docker, "build", "--tag", tag, str(ROOT)], check=True, timeout=BUILD_TIMEOUT)
        return f"docker: {tag}"
    ensure_tools()
    podman = Podman.default()
    seconds = build_with_podman(podman, tag)
    size = podman.run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
    return f"podman (store {podman.home}): {tag}, {int(size) / 1e6:.0f} MB, built in {seconds:.0f}s"
