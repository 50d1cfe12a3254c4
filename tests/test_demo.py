"""`make demo` works: the README's first command, run the way CI can (DEMO_ONCE=1).

A process test by nature: the demo starts its own control plane, simulator and operator. It shows
every example Ready (the basic instance, the workload's shaped token Secret, the platform team's
account and the application team's instance through it), the token the simulator issued in the
Secret, and the plugin's status tree at the end, which names every instance and the account.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATUS_HEADER = "==> kubectl openconnectors status -A"


def test_demo_reaches_ready_with_every_example_and_shows_the_status_tree() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hack.demo"],
        cwd=ROOT,
        env={**os.environ, "DEMO_ONCE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    lines = out.splitlines()
    rows = {tuple(line.split()[:2]): line.split() for line in lines}
    for instance in [("demo", "acme-closeio"), ("demo", "acme-closeio-shop"), ("sales", "sales-closeio")]:
        assert rows[instance][2:4] == ["True", "Available"], out
    assert "shared" in rows["sales", "sales-closeio"], out  # the application team's, through the account
    assert any(line.split()[:3] == ["shared", "True", "Available"] for line in lines), out
    assert "the Secret holds the simulator's token" in out
    assert "OC_AUTHORIZATION is the whole header" in out
    # The plugin's tree comes last, and names the account and every instance.
    assert STATUS_HEADER in out, out
    tree = out.split(STATUS_HEADER, 1)[1]
    for name in ("shared", "acme-closeio", "acme-closeio-shop", "sales-closeio", "acme-closeio-credentials"):
        assert name in tree, tree
