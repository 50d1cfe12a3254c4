"""Which operator code the benchmark runs, and proof that it did not change during the run.

Other engineers edit the operator while benchmarks run. By default the operator processes run
the working tree, and each start records a digest of the package's source; a run whose
operators saw different code is flagged. With `--operator-ref REF` the package is exported from
git (`git archive REF`) into the work directory and put first on the operators' PYTHONPATH, so
every operator of the run executes exactly that commit, whatever happens to the working tree.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "operator/connector_operator"


def digest(package_dir: Path) -> str:
    """sha256 over the package's Python files (relative path and content), short."""
    sha = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        sha.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


@dataclass
class OperatorSource:
    ref: str | None  # None: the working tree
    commit: str | None
    python_path: Path | None  # prepended to PYTHONPATH of every operator process
    starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def package_dir(self) -> Path:
        return (self.python_path or ROOT / "operator") / "connector_operator"

    def record_start(self, label: str, seconds: float) -> None:
        self.starts.append(
            {"operator": label, "at_seconds": round(seconds, 1), "digest": digest(self.package_dir)}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref or "working tree",
            "commit": self.commit,
            "digests_at_each_start": self.starts,
            "changed_during_run": len({s["digest"] for s in self.starts}) > 1,
        }


def prepare(ref: str | None, work_dir: Path) -> OperatorSource:
    if ref is None:
        return OperatorSource(None, None, None)
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}").decode().strip()
    target = work_dir / "operator-src"
    archive = _git("archive", "--format=tar", commit, PACKAGE)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return OperatorSource(ref, commit, target / "operator")
