"""Summarise a py-spy speedscope profile of the operator: where its event-loop thread spends time.

`python -m bench.profile_summary bench/results/profiles/py-spy-create.speedscope.json [--top 15]`

The operator is one asyncio event loop (kopf's) plus helper threads (the default executor, which
runs kopf's sync handlers and `asyncio.to_thread` calls such as the credential look-up). When
the loop thread is busy all the time, it is the bottleneck, so the breakdown is of the main
thread's samples: inclusive shares of a few categories (a sample counts for every category whose
code is on its stack), then the hottest functions by self time. Per-thread sample totals come first.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

# (label, substrings of "function (file:line)" frames): a sample belongs to a category when any
# frame of its stack matches. Shares overlap (reconcile includes its HTTP calls).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("operator: reconcile pass (all it calls)", ("reconciler/reconcile.py",)),
    ("httpx/httpcore (Open Connectors calls)", ("httpx/", "httpcore/")),
    ("operator's Kubernetes calls (kube/api.py: Secrets, status)", ("kube/api.py",)),
    ("aiohttp (kopf's and kube/api.py's HTTP)", ("aiohttp/",)),
    ("hand-offs to the thread pool (run_in_executor/to_thread)", ("run_in_executor", "to_thread")),
    ("kopf: processing watch events (process_resource_event)", ("process_resource_event",)),
    ("kopf: indexing (secret_cache, secret_users)", ("engines/indexing.py",)),
    ("kopf: watch stream reading and JSON", ("clients/watching.py",)),
    ("kopf: patching objects (finalizer)", ("clients/patching.py",)),
    ("kopf: posting Events", ("engines/posting.py",)),
    ("TLS (ssl, sslproto)", ("ssl.py", "sslproto.py")),
    ("JSON decoding", ("json/decoder.py",)),
    ("logging", ("logging/__init__.py",)),
    ("failed imports (importlib searching the path)", ("_find_spec",)),
)


def _frame_names(frames: list[dict[str, Any]]) -> list[str]:
    names = []
    for frame in frames:
        file = str(frame.get("file", "?"))
        for marker in ("site-packages/", "python3.11/", "/operator/"):
            file = file.split(marker)[-1]
        names.append(f"{frame['name']} ({file}:{frame.get('line', '?')})")
    return names


def summarise(path: Path, top: int) -> dict[str, Any]:
    data = json.loads(path.read_text())
    names = _frame_names(data["shared"]["frames"])
    threads = {p["name"]: round(sum(p["weights"]), 2) for p in data["profiles"]}
    main = max(data["profiles"], key=lambda p: sum(p["weights"]))
    total = sum(main["weights"]) or 1.0
    categories: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for stack, weight in zip(main["samples"], main["weights"], strict=True):
        frames = [names[i] for i in stack]
        if frames:
            self_time[frames[-1]] += weight
        for label, patterns in CATEGORIES:
            if any(p in frame for frame in frames for p in patterns):
                categories[label] += weight
    return {
        "profile": str(path),
        "thread_busy_seconds": threads,
        "main_thread": main["name"],
        "main_thread_busy_seconds": round(total, 2),
        "main_thread_inclusive_percent": {
            label: round(100 * categories[label] / total, 1) for label, _ in CATEGORIES
        },
        "main_thread_self_percent": {k: round(100 * v / total, 1) for k, v in self_time.most_common(top)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(summarise(args.profile, args.top), indent=2))


if __name__ == "__main__":
    main()
