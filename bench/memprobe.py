"""Run a module under tracemalloc and dump where its live memory was allocated on SIGUSR2.

`python -m bench.memprobe OUTPUT -m connector_operator run ...` starts tracing before anything is
imported (so import-time allocations are attributed too), then runs the module as `__main__`.
Each SIGUSR2 writes OUTPUT (atomically, via a temporary file): the traced total, the RSS, and the
largest allocation sites by file and by line, now and at the traced peak: a thread looks at the
traced total four times a second and, whenever it is 5 % above the last peak it summarised, keeps
a summary of the allocation sites then (the summary, not the snapshot, which would be traced too).
It is a diagnostic (`--profile tracemalloc`): tracing slows the process down and adds its own
memory, so its timings are not results.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 8
TOP = 40


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


PEAK_STEP = 1.05
PEAK_POLL = 0.25
_peak: list[str] = []  # the summary at the largest traced total seen so far


def _summary() -> list[str]:
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        ]
    )
    current, peak = tracemalloc.get_traced_memory()
    lines = [
        f"traced now {current / 2**20:.1f} MiB, traced peak {peak / 2**20:.1f} MiB, "
        f"RSS {_rss_kib() / 1024:.1f} MiB",
        "",
        f"top {TOP} by file:",
    ]
    lines += [
        f"  {s.size / 2**20:8.2f} MiB {s.count:9d} blocks  {s.traceback}"
        for s in snapshot.statistics("filename")[:TOP]
    ]
    lines += ["", f"top {TOP} by line (with the calling frames):"]
    for stat in snapshot.statistics("traceback")[:TOP]:
        lines.append(f"  {stat.size / 2**20:8.2f} MiB {stat.count:9d} blocks")
        lines += [f"      {frame.filename}:{frame.lineno}" for frame in reversed(stat.traceback)]
    return lines


def _watch_peak() -> None:
    summarised = 0
    while True:
        time.sleep(PEAK_POLL)
        current, _ = tracemalloc.get_traced_memory()
        if current > summarised * PEAK_STEP:
            _peak[:] = _summary()
            summarised = current


def dump(output: Path) -> None:
    lines = [*_summary(), "", "# at the largest traced total summarised (see the module docstring)", *_peak]
    partial = output.with_suffix(output.suffix + ".partial")
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, output)


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit("usage: python -m bench.memprobe OUTPUT -m MODULE [ARGS...]")
    output, module = Path(sys.argv[1]), sys.argv[3]
    tracemalloc.start(FRAMES)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        dump(output)

    signal.signal(signal.SIGUSR2, on_signal)
    threading.Thread(target=_watch_peak, name="memprobe-peak", daemon=True).start()
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
