"""Releases: the working tree's version, the previous release, and the commit a release was made from.

A release is a git tag `vX.Y.Z` and an entry `## X.Y.Z (commit <full sha>, <date>)` in CHANGELOG.md.
A clone may lack the tags (CI clones without them), so a release resolves to its commit from the
tag when there is one, else from its CHANGELOG entry; when both exist they must agree. Either way
the commit must be in the clone (a shallow clone may not have it: the error says so).

    python -m hack.releases commit v0.1.0   # the commit of release 0.1.0
    python -m hack.releases previous        # the newest release below the working tree's version
    python -m hack.releases current         # the working tree's version (pyproject.toml)

The upgrade test and the CRD compatibility test (tests/api/test_crd_compat.py) take the previous
release from here; nothing else states a release's commit.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGELOG = "CHANGELOG.md"
# `## 0.2.0 (unreleased)` or `## 0.1.0 (commit 2eb3ef6d..., 2026-12-07)`.
HEADING = re.compile(r"^## (?P<version>\d+\.\d+\.\d+) \((?P<note>[^)\n]*)\)[ \t]*$", re.MULTILINE)
RELEASED = re.compile(r"commit (?P<commit>[0-9a-f]{40}), (?P<date>\d{4}-\d{2}-\d{2})")


class ReleaseError(Exception):
    """A release that cannot be resolved, with what to do about it."""


@dataclass(frozen=True)
class Entry:
    """One CHANGELOG.md heading; `commit` and `date` are None while the version is unreleased."""

    version: str
    commit: str | None
    date: str | None


def parse_version(text: str) -> tuple[int, int, int]:
    """`0.1.0` or `v0.1.0` as a tuple that sorts as versions do."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if match is None:
        raise ReleaseError(f"not a version X.Y.Z: {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def entries(root: Path = ROOT) -> list[Entry]:
    """CHANGELOG.md's version headings, in the file's order (newest first)."""
    found = []
    for heading in HEADING.finditer((root / CHANGELOG).read_text()):
        note = heading.group("note").strip()
        released = RELEASED.fullmatch(note)
        if released is None and note != "unreleased":
            raise ReleaseError(
                f"{CHANGELOG}: '## {heading.group('version')} ({note})' is neither "
                "'(unreleased)' nor '(commit <full sha>, <YYYY-MM-DD>)'"
            )
        commit, date = (released.group("commit"), released.group("date")) if released else (None, None)
        found.append(Entry(heading.group("version"), commit, date))
    return found


def current_version(root: Path = ROOT) -> str:
    """The working tree's version: pyproject.toml's (the chart and `--version` must agree with it)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    version: str = project["version"]
    return version


def previous_release(root: Path = ROOT) -> str:
    """The newest released version (a CHANGELOG entry with a commit) below the working tree's."""
    current = parse_version(current_version(root))
    released = [e.version for e in entries(root) if e.commit and parse_version(e.version) < current]
    if not released:
        raise ReleaseError(f"{CHANGELOG} names no released version below {current_version(root)}")
    return max(released, key=parse_version)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def _tagged(root: Path, tag: str) -> str | None:
    """The commit the tag points at (an annotated tag is peeled), or None without the tag."""
    found = _git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else None


def _recorded(root: Path, version: str) -> str | None:
    """The commit CHANGELOG.md names for the version, or None when it names none."""
    if not (root / CHANGELOG).is_file():
        return None
    return next((e.commit for e in entries(root) if e.version == version and e.commit), None)


def _present(root: Path, commit: str) -> bool:
    return _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def commit_of(version: str, root: Path = ROOT) -> str:
    """The full sha of the commit release `version` (`0.1.0` or `v0.1.0`) was made from."""
    plain = ".".join(map(str, parse_version(version)))
    tagged, recorded = _tagged(root, f"v{plain}"), _recorded(root, plain)
    if tagged and recorded and tagged != recorded:
        raise ReleaseError(
            f"tag v{plain} is commit {tagged} but {CHANGELOG} says {recorded}: one of them is wrong"
        )
    commit = tagged or recorded
    if commit is None:
        raise ReleaseError(
            f"release {plain}: no tag v{plain} and no '## {plain} (commit ...)' in {CHANGELOG}"
        )
    # From the CHANGELOG the sha is only text: the commit must be in this clone to be used. A
    # shallow clone (as some CI systems make) fetches it from its origin first, once.
    if (
        not _present(root, commit)
        and _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    ):
        _git(root, "fetch", "--quiet", "--unshallow")
    if not _present(root, commit):
        raise ReleaseError(
            f"release {plain} is commit {commit}, which this clone does not have "
            "(a shallow clone? `git fetch --unshallow`, or fetch that commit)"
        )
    return commit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.releases", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    commands = parser.add_subparsers(dest="command", required=True)
    commits = commands.add_parser("commit", help="the commit a release was made from")
    commits.add_argument("version", help="0.1.0 or v0.1.0")
    commands.add_parser("previous", help="the newest release below the working tree's version")
    commands.add_parser("current", help="the working tree's version")
    args = parser.parse_args(argv)
    try:
        if args.command == "commit":
            print(commit_of(args.version, args.root))
        elif args.command == "previous":
            print(previous_release(args.root))
        else:
            print(current_version(args.root))
    except ReleaseError as error:
        sys.exit(f"hack.releases: {error}")


if __name__ == "__main__":
    main()
