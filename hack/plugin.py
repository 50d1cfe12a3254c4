"""`make plugin`: the kubectl plugin as one Python zipapp, and its krew archive and manifest.

dist/kubectl-openconnectors.pyz (and the same file as dist/kubectl-openconnectors, executable, the
name kubectl looks for on the PATH) holds the plugin's package and its pure-Python dependencies,
installed with `pip install --target --require-hashes` from the entries of requirements.lock (the
same pins and hashes as the development environment). It runs on any OS with Python 3.11 or
newer: compiled extensions are left out (PyYAML and charset-normalizer fall back to their pure
Python code; a zip cannot load an extension anyway), and so is aiohttp, which only the
`kubernetes.aio` client uses and the plugin does not.

dist/kubectl-openconnectors.tar.gz is what krew downloads: the zipapp as `kubectl-openconnectors`
(executable, `#!/usr/bin/env python3`). dist/openconnectors.yaml is plugins/krew/openconnectors.yaml
with the version and the archive's sha256 filled in. Every file's time is fixed, so the same
inputs give the same bytes and the same sha256.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipapp
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hack import releases

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "operator" / "kubectl_openconnectors"
LOCK = ROOT / "requirements.lock"
MANIFEST = ROOT / "plugins" / "krew" / "openconnectors.yaml"
# What the plugin imports; their dependencies follow from the installed distributions' metadata.
ROOTS = ("kubernetes", "click", "pyyaml")
# Only kubernetes.aio uses aiohttp (and it is compiled); the plugin uses the synchronous client.
LEFT_OUT = {"aiohttp"}
LEFT_OUT_PATHS = ("kubernetes/aio", "bin")
COMPILED = ("*.so", "*.pyd", "*.dylib")
FIXED_TIME = 315532800  # 1980-01-01, the earliest time a zip can hold
ENTRY = Path(__file__).with_name("plugin_main.py")  # the zipapp's __main__.py


def closure(roots: tuple[str, ...]) -> list[str]:
    """The distributions the roots need at run time (no extras), by canonical name, sorted."""
    needed: set[str] = set()
    queue = [canonicalize_name(r) for r in roots]
    while queue:
        name = queue.pop()
        if name in needed or name in LEFT_OUT:
            continue
        needed.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(canonicalize_name(requirement.name))
    return sorted(needed)


def locked(names: list[str], lock: str) -> str:
    """The entries of the lock file (pin and hashes) for these distributions."""
    entries = {}
    for block in re.split(r"\n(?=[a-z0-9])", lock, flags=re.IGNORECASE):
        first = block.split("==", 1)[0].strip()
        if first and not first.startswith("#"):
            entries[canonicalize_name(first)] = "\n".join(
                line for line in block.splitlines() if not line.lstrip().startswith("#")
            )
    missing = [n for n in names if n not in entries]
    if missing:
        raise SystemExit(f"not in {LOCK.name}: {', '.join(missing)} (run make lock)")
    return "\n".join(entries[n] for n in names) + "\n"


def stage(work: Path) -> Path:
    """The zipapp's tree: the dependencies, the plugin's package and the entry point."""
    shutil.rmtree(work, ignore_errors=True)
    site = work / "app"
    site.mkdir(parents=True)
    requirements = work / "requirements.txt"
    requirements.write_text(locked(closure(ROOTS), LOCK.read_text()))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--require-hashes"]
    subprocess.run(
        [*pip, "--only-binary=:all:", "--no-compile", "--target", str(site), "-r", str(requirements)],
        check=True,
    )
    for left_out in LEFT_OUT_PATHS:
        shutil.rmtree(site / left_out, ignore_errors=True)
    for pattern in (*COMPILED, "__pycache__"):
        for path in list(site.rglob(pattern)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(PACKAGE, site / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # A zipapp carries no dist-info: `kubectl openconnectors --version` reads this instead.
    version = f'"""The release, written by hack/plugin.py."""\n\nVERSION = "{releases.current_version()}"\n'
    (site / PACKAGE.name / "_version.py").write_text(version)
    shutil.copy(ENTRY, site / "__main__.py")
    for path in [site, *site.rglob("*")]:
        os.utime(path, (FIXED_TIME, FIXED_TIME))
    return site


def build(out: Path, work: Path) -> Path:
    """Build the zipapp into `out`; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / "kubectl-openconnectors.pyz"
    zipapp.create_archive(stage(work), target, interpreter="/usr/bin/env python3", compressed=True)
    # The same file under the name kubectl looks for: `PATH=dist:$PATH kubectl openconnectors`.
    command = out / "kubectl-openconnectors"
    shutil.copyfile(target, command)
    command.chmod(0o755)
    return target


def krew(pyz: Path, out: Path, version: str, base_url: str) -> tuple[Path, Path]:
    """The krew archive (the zipapp as `kubectl-openconnectors`) and its manifest."""
    archive = out / "kubectl-openconnectors.tar.gz"
    data = pyz.read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("kubectl-openconnectors")
        info.size, info.mode, info.mtime = len(data), 0o755, FIXED_TIME
        tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    text = MANIFEST.read_text().replace("{{VERSION}}", version).replace("{{SHA256}}", sha)
    manifest = out / "openconnectors.yaml"
    manifest.write_text(text.replace("{{URL}}", f"{base_url}/{version}/{archive.name}"))
    return archive, manifest


def project_version() -> str:
    return "v" + releases.current_version()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.plugin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "plugin")
    parser.add_argument(
        "--base-url",
        default="https://github.com/open-connectors-operator/open-connectors-operator/releases/download",
    )
    args = parser.parse_args()
    pyz = build(args.out, args.work)
    archive, manifest = krew(pyz, args.out, project_version(), args.base_url)
    for path in (pyz, pyz.with_suffix(""), archive, manifest):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
