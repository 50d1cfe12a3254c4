"""`make demo` works: the README's first command, run the way CI can (DEMO_ONCE=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_reaches_ready_with_the_simulators_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hack.demo"],
        cwd=ROOT,
        env={**os.environ, "DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "True    Available" in result.stdout
    assert "the Secret holds the simulator's token" in result.stdout
