"""`--profile apiserver`: a CPU profile of kube-apiserver itself, during `floor` and during `create`.

The two profiles cover the same fixed span from the first create, so their sample totals compare
the API server's work for the floor's writes with its work for the operator's; `go tool pprof
-top` of each is written next to them. The API server serves `/debug/pprof` (its default
`--profiling=true`) to the admin identity the driver uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from bench.kube import KubeClient

DEFAULT_SECONDS = 15


@contextlib.asynccontextmanager
async def apiserver_profile(kube: KubeClient, output: Path, seconds: int) -> AsyncIterator[None]:
    """Profile the API server for `seconds` from entry; on exit wait for the profile, then write it
    and its `-top` summary (`output` and `output` + `.top.txt`)."""
    task = asyncio.create_task(kube.raw_get("/debug/pprof/profile", {"seconds": str(seconds)}, seconds + 30))
    try:
        yield
    finally:
        data = await task
        await asyncio.to_thread(output.write_bytes, data)
        await asyncio.to_thread(_summarise, output)


def _summarise(profile: Path) -> None:
    go = shutil.which("go")
    if go is None:
        return
    top = subprocess.run(
        [go, "tool", "pprof", "-top", "-nodecount=60", str(profile)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    cumulative = subprocess.run(
        [go, "tool", "pprof", "-top", "-cum", "-nodecount=80", str(profile)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    profile.with_name(profile.name + ".top.txt").write_text(
        top.stdout + top.stderr + "\n\n# cumulative\n" + cumulative.stdout
    )
