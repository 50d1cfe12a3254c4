"""`python -m hack.controlplane build|up|down`: what `make cluster-up` and `make cluster-down` call.

`build` also builds helm, which the chart tests need, into the same cache.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hack.controlplane import build, cluster

DEFAULT_STATE = Path(".local/controlplane")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.controlplane")
    parser.add_argument("command", choices=["build", "up", "down", "path"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE)
    parser.add_argument("--kubeconfig", type=Path, default=Path(".local/kubeconfig"))
    args = parser.parse_args()
    if args.command == "build":
        print(build.ensure_built())
        print(build.ensure_helm())
    elif args.command == "path":
        print(build.cache_dir())
    elif args.command == "up":
        if (args.state_dir / "pids").exists():
            cluster.stop_detached(args.state_dir)  # a stale plane from an earlier run
        plane = cluster.start(args.state_dir.resolve(), detached=True)
        args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        plane.kubeconfig_for(plane.admin_token, args.kubeconfig)
        print(f"control plane ready at {plane.server}; kubeconfig: {args.kubeconfig}", file=sys.stderr)
    else:
        cluster.stop_detached(args.state_dir)
        args.kubeconfig.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
