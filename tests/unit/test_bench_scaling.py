"""bench/scaling.py: the scaling table computes issue 13's two targets from the runs' JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import scaling


def run(
    n: int, seconds: float, start: float, at_rest: float, started: str = "2026-12-01T10:00:00Z"
) -> dict[str, Any]:
    return {
        "command": f"make bench N={n}",
        "started_at": started,
        "parameters": {"n": n, "namespaces": 10},
        "operator_source": {"commit": "abc1234"},
        "phases": {
            "floor": {"seconds_to_all_ready": seconds / 3},
            "create": {
                "seconds_to_all_ready": seconds,
                "memory_idle_before_create": {"rss_mib": start},
                "memory_after_create": {"peak_rss_mib": at_rest + 50},
            },
            "restart": {"memory_at_settled": {"rss_mib": at_rest}},
        },
    }


def test_the_targets_come_from_the_runs_of_1000_and_10000(tmp_path: Path) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    (small / "n1000.json").write_text(json.dumps(run(1000, 10.0, 60.0, 140.0)))
    # An older run of the same N is ignored.
    (small / "n10000.json").write_text(json.dumps(run(10000, 999.0, 60.0, 900.0, "2026-11-01T00:00:00Z")))
    (big / "n10000.json").write_text(json.dumps(run(10000, 120.0, 60.0, 450.0)))
    rows = [scaling.row(r) for r in scaling.load([small, big]).values()]
    assert [r["n"] for r in rows] == [1000, 10000]
    assert rows[1]["per_object_ms"] == 12.0
    assert rows[1]["kib_per_object_at_rest"] == 39.9  # (450 - 60) MiB over 10,000 objects
    text = scaling.markdown(rows)
    assert "| seconds per object, N=10,000 relative to N=1,000 | <= 1.3x | 1.2 | yes |" in text
    assert "| RSS at rest per object, N=10,000 | <= 40 KiB | 39.9 | yes |" in text
    slow = [rows[0], {**rows[1], "per_object_ms": 14.0, "kib_per_object_at_rest": 41.0}]
    assert "| 1.4 | **no** |" in scaling.markdown(slow)
    assert "| 41.0 | **no** |" in scaling.markdown(slow)
