"""One version, stated alike everywhere, and releases that resolve to commits with or without tags.

pyproject.toml, the chart's version and appVersion, `open-connectors-operator --version`,
`kubectl openconnectors --version` and CHANGELOG.md's newest heading agree; every released
CHANGELOG entry names a commit this clone has (and its tag, where there is one, the same commit);
hack/releases.py finds the previous release from a clone without tags as well as with them.
No cluster: files, git and the commands in-process (click's CliRunner).
"""

from __future__ import annotations

import importlib
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from connector_operator import shutdown
from hack import releases
from kubectl_openconnectors.cli import cli as plugin_cli

ROOT = releases.ROOT
CHART = ROOT / "charts" / "open-connectors-operator" / "Chart.yaml"


@pytest.fixture
def operator_cli() -> click.Group:
    """The operator's command group. Importing its module installs the process's early signal
    handlers (shutdown.exit_on_signals): the test worker gets its own back."""
    saved = {signum: signal.getsignal(signum) for signum in shutdown.SIGNALS}
    try:
        module = importlib.import_module("connector_operator.__main__")
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    group: click.Group = module.cli
    return group


def shown_version(group: click.Group) -> str:
    result = CliRunner().invoke(group, ["--version"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_statement_of_the_version_agrees(operator_cli: click.Group) -> None:
    version = releases.current_version()
    releases.parse_version(version)  # X.Y.Z
    chart = yaml.safe_load(CHART.read_text())
    assert (chart["version"], chart["appVersion"]) == (version, version)
    assert shown_version(operator_cli) == f"open-connectors-operator, version {version}\n"
    assert shown_version(plugin_cli) == f"kubectl openconnectors, version {version}\n"
    assert releases.entries()[0].version == version


def test_the_changelog_lists_each_version_once_newest_first() -> None:
    versions = [releases.parse_version(entry.version) for entry in releases.entries()]
    assert len(versions) >= 2
    assert versions == sorted(set(versions), reverse=True)


def test_every_released_entry_names_a_commit_this_clone_has() -> None:
    released = [entry for entry in releases.entries() if entry.commit is not None]
    assert released
    for entry in released:
        exists = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{entry.commit}^{{commit}}"])
        assert exists.returncode == 0, f"{entry.version}: no commit {entry.commit}"
        # From the tag when this clone has it (they must then agree), else from the entry.
        assert releases.commit_of(entry.version) == entry.commit


def test_the_previous_release_is_0_1_0() -> None:
    # The release before the working tree's (0.2.0); it moves on with each release.
    assert releases.previous_release() == "0.1.0"
    assert releases.parse_version(releases.previous_release()) < releases.parse_version(
        releases.current_version()
    )


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def untagged(tmp_path: Path) -> Path:
    """A clone without tags (as CI may clone) of this repository, with the working tree's
    CHANGELOG.md and pyproject.toml (those of the commit that will carry them)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-tags", str(ROOT), str(clone)], check=True)
    for name in (releases.CHANGELOG, "pyproject.toml"):
        shutil.copy(ROOT / name, clone / name)
    assert git(clone, "tag", "--list") == ""
    return clone


def test_a_release_resolves_without_its_tag_and_with_it(untagged: Path) -> None:
    expected = releases.commit_of("0.1.0")
    assert releases.previous_release(untagged) == "0.1.0"
    assert releases.commit_of("0.1.0", untagged) == expected  # from CHANGELOG.md
    assert releases.commit_of("v0.1.0", untagged) == expected
    git(untagged, "-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", "v0.1.0", "-m", "0.1.0", expected)
    (untagged / releases.CHANGELOG).unlink()
    assert releases.commit_of("0.1.0", untagged) == expected  # from the (annotated) tag alone


def test_a_tag_and_a_changelog_that_disagree_are_refused(untagged: Path) -> None:
    other = git(untagged, "rev-parse", f"{releases.commit_of('0.1.0')}~1")
    git(untagged, "tag", "v0.1.0", other)
    with pytest.raises(releases.ReleaseError, match="one of them is wrong"):
        releases.commit_of("0.1.0", untagged)


def write_changelog(root: Path, current: str, *headings: str) -> None:
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{current}"\n')
    (root / releases.CHANGELOG).write_text("# Changelog\n\n" + "\n\n".join(f"## {h}" for h in headings))


def test_a_commit_the_clone_lacks_or_an_unknown_release_is_a_clear_error(untagged: Path) -> None:
    missing = "deadbeef" * 5
    write_changelog(untagged, "0.3.0", "0.3.0 (unreleased)", f"0.2.0 (commit {missing}, 2027-01-01)")
    with pytest.raises(releases.ReleaseError, match=r"does not have .*shallow"):
        releases.commit_of("0.2.0", untagged)
    with pytest.raises(releases.ReleaseError, match=r"no tag v0\.9\.0 and no"):
        releases.commit_of("0.9.0", untagged)


def test_previous_release_compares_versions_as_numbers_and_skips_unreleased(tmp_path: Path) -> None:
    sha = "a" * 40
    write_changelog(
        tmp_path,
        "0.10.0",
        "0.11.0 (unreleased)",
        "0.10.0 (unreleased)",
        f"0.9.1 (commit {sha}, 2027-02-01)",
        f"0.9.0 (commit {sha}, 2027-01-01)",
    )
    assert releases.previous_release(tmp_path) == "0.9.1"
    write_changelog(tmp_path, "0.2.0", "0.2.0 (unreleased)", "0.1.0 (someday)")
    with pytest.raises(releases.ReleaseError, match="neither"):
        releases.previous_release(tmp_path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["commit", "v0.1.0"], lambda: releases.commit_of("0.1.0")),
        (["previous"], lambda: "0.1.0"),
        (["current"], releases.current_version),
    ],
    ids=["commit", "previous", "current"],
)
def test_the_command_line(
    argv: list[str], expected: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    releases.main(argv)
    assert capsys.readouterr().out == expected() + "\n"


def test_the_command_line_says_why_it_cannot_resolve(tmp_path: Path) -> None:
    write_changelog(tmp_path, "0.2.0", "0.2.0 (unreleased)")
    with pytest.raises(SystemExit, match=r"hack\.releases: .*names no released version below 0\.2\.0"):
        releases.main(["--root", str(tmp_path), "previous"])
