"""`python -m hack.image build [--tag T] | podman ARGS... | path`: what `make image` calls.

`build` builds the Dockerfile with Docker if an engine answers, else with podman in the project's
store (installing podman, runc and debootstrap with apt-get when missing, as root). `podman ARGS`
runs podman against that store, for example `python -m hack.image podman images`, `... podman save
-o oco.tar localhost/open-connectors-operator:dev`, or `... podman pull
docker.io/library/python:3.11.14-slim-bookworm` to build on the official base instead of the
stand-in. `path` prints the store's directory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from hack.image import build
from hack.image.podman import Podman
from hack.image.tools import ToolsMissing, ensure_tools


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m hack.image")
    commands = parser.add_subparsers(dest="command", required=True)
    built = commands.add_parser("build", help="build the image (make image)")
    built.add_argument("--tag", default=build.DEV_TAG)
    passthrough = commands.add_parser("podman", help="podman with the project's configuration and store")
    passthrough.add_argument("args", nargs=argparse.REMAINDER)
    commands.add_parser("path", help="print the project's podman directory")
    args = parser.parse_args()
    try:
        if args.command == "build":
            print(build.build(args.tag))
        elif args.command == "path":
            print(Podman.default().home)
        else:
            ensure_tools()
            podman = Podman.default()
            sys.exit(subprocess.run(podman.command(*args.args), env=podman.env, check=False).returncode)
    except (ToolsMissing, RuntimeError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
