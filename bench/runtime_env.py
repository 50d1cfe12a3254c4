"""The Python environment the benchmark runs the operator in: what the image ships.

The development venv also holds the `kubernetes` package (the tests use it), and kopf imports it
when it is there: an operator started from it carries tens of MB the image never has. So the
operator under test runs from a venv of its own, built from `requirements-runtime.lock` alone
(hash-checked, as the Dockerfile installs it), cached under the work directory by the lock's
digest. The operator's code is not installed into it: the working tree (or the `--operator-ref`
export) goes first on PYTHONPATH. Profilers and what-ifs need the development venv's modules, so
`--profile` and `--whatif` runs, and `--dev-venv`, keep using it (the report says which ran).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bench.source import ROOT

LOCK = ROOT / "requirements-runtime.lock"


def runtime_python(work_dir: Path) -> Path:
    """The interpreter of the runtime-only venv, built once per lock content."""
    tag = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    venv = work_dir / f"runtime-venv-{tag}"
    python = venv / "bin" / "python"
    if (venv / ".installed").exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--require-hashes", "-r", str(LOCK)], check=True
    )
    (venv / ".installed").touch()
    return python
