"""`make plugin`'s zipapp and krew files (hack/plugin.py): built once per session (about 7 s, pip
installing the locked wheels from its cache), then run on its own, with Python's site-packages
switched off, against the real API server. It carries no compiled code (one file for every OS),
unpacks itself once into the user's cache so that later starts are fast, and the krew archive
and manifest agree with each other byte for byte."""

from __future__ import annotations

import hashlib
import importlib
import json
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hack import plugin as build
from hack import releases
from hack.controlplane.cluster import ControlPlane
from kubectl_openconnectors.cli import main

# Its tests share one build: on one xdist worker (`make test` runs with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("plugin-zipapp")
VERSION = "v0.0.0-test"
BASE_URL = "https://example.invalid/releases/download"


@dataclass(frozen=True)
class Built:
    pyz: Path
    archive: Path
    manifest: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("dist")
    pyz = build.build(out, tmp_path_factory.mktemp("work") / "plugin")
    archive, manifest = build.krew(pyz, out, VERSION, BASE_URL)
    return Built(pyz, archive, manifest)


def run_alone(pyz: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The zipapp with nothing installed around it: isolated mode, no site-packages (-S), and a
    cache directory of the test's own. PYTHONDONTWRITEBYTECODE, as set here, must not slow it."""
    env = {
        "XDG_CACHE_HOME": str(cache),
        "HOME": str(cache),
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [sys.executable, "-I", "-S", str(pyz), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_the_zipapp_runs_on_its_own_against_the_api_server(
    built: Built, tmp_path: Path, control_plane: ControlPlane, crd: None
) -> None:
    helped = run_alone(built.pyz, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Usage: kubectl openconnectors" in helped.stdout
    assert "Exit codes: 0 ok (plan: nothing to do);" in " ".join(helped.stdout.split())
    listed = run_alone(
        built.pyz, tmp_path, "status", "-A", "-o", "json", "--kubeconfig", str(control_plane.kubeconfig)
    )
    assert listed.returncode in (0, 1), listed.stderr  # 1: another test's object is not Ready
    assert set(json.loads(listed.stdout)) == {"namespace", "items", "notes"}
    # It unpacked itself once, and Python kept the compiled modules there.
    [unpacked] = (tmp_path / "kubectl-openconnectors").iterdir()
    assert (unpacked / "kubectl_openconnectors" / "__pycache__").is_dir()
    assert any((unpacked / "kubernetes" / "client" / "models" / "__pycache__").iterdir())


def test_the_zipapp_states_the_release_it_was_built_from(built: Built, tmp_path: Path) -> None:
    """A zipapp has no dist-info to read a version from: hack/plugin.py writes it in at build time."""
    shown = run_alone(built.pyz, tmp_path, "--version")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"kubectl openconnectors, version {releases.current_version()}\n"


def test_the_zipapp_holds_pure_python_only_and_no_aiohttp(built: Built) -> None:
    with zipfile.ZipFile(built.pyz) as zipped:
        entries = zipped.infolist()
    names = [entry.filename for entry in entries]
    assert [n for n in names if n.endswith((".so", ".pyd", ".dylib"))] == []
    assert [
        n for n in names if n.startswith(("aiohttp/", "kubernetes/aio/", "bin/")) or "__pycache__" in n
    ] == []
    assert {
        "__main__.py",
        "kubectl_openconnectors/cli.py",
        "kubernetes/client/api_client.py",
        "yaml/__init__.py",
    } <= set(names)
    assert "kubectl_openconnectors/plan.py" in names
    # Fixed times: the same inputs give the same bytes (and the krew manifest's sha256 holds).
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert built.pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")


def test_the_krew_archive_and_manifest_agree(built: Built, tmp_path: Path) -> None:
    with tarfile.open(built.archive) as tar:
        [member] = tar.getmembers()
        content = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert (member.name, member.mode, member.isfile()) == ("kubectl-openconnectors", 0o755, True)
    assert content == built.pyz.read_bytes()
    command = built.pyz.with_suffix("")  # dist/kubectl-openconnectors, for a PATH as it is
    assert (command.read_bytes(), command.stat().st_mode & 0o777) == (content, 0o755)
    manifest = yaml.safe_load(built.manifest.read_text())
    assert "{{" not in built.manifest.read_text()
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("Plugin", built.manifest.stem)
    assert manifest["spec"]["version"] == VERSION
    [platform] = manifest["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(built.archive.read_bytes()).hexdigest()
    assert platform["uri"] == f"{BASE_URL}/{VERSION}/{built.archive.name}"
    assert platform["bin"] == member.name
    assert platform["files"] == [{"from": member.name, "to": "."}]
    # The archive is reproducible too: built again from the same zipapp, the same sha256.
    again, _ = build.krew(built.pyz, tmp_path, VERSION, BASE_URL)
    assert again.read_bytes() == built.archive.read_bytes()


def test_the_console_script_and_the_extra_and_not_in_the_image() -> None:
    """`pip install '.[plugin]'` gives `kubectl-openconnectors`; the operator's runtime lock (what
    the image installs) does not carry the kubernetes package the plugin needs."""
    project = tomllib.loads((build.ROOT / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["kubectl-openconnectors"].partition(":")
    assert getattr(importlib.import_module(module), function) is main
    assert [r.split(">")[0] for r in project["optional-dependencies"]["plugin"]] == ["kubernetes"]
    runtime = (build.ROOT / "requirements-runtime.lock").read_text()
    assert "\nkubernetes==" not in runtime
