"""podman with a configuration and storage of the project's own, under the cache directory.

Nothing here reads or changes the machine's container configuration: `CONTAINERS_CONF` and
`CONTAINERS_STORAGE_CONF` point at files written here, and every command names its storage root
(`--root`), run root (`--runroot`) and temporary directory. What the configuration says, and why
(each was needed on the CI's kind of VM):

- `runtime = "runc"`: crun refuses the VM's hybrid cgroup layout;
- `cgroup_manager = "cgroupfs"`, `events_logger = "file"`: there is no systemd to ask;
- `default_ulimits`: podman's defaults (1048576 open files) exceed the VM's hard limits, which runc
  then refuses; the current hard limits are used instead (capped at podman's values);
- storage driver `overlay` (the kernel's, as root).

The run root and temporary directory hold state that must not survive a reboot (podman tells a
reboot from a file in its temporary directory), and podman refuses a run root longer than 50
characters: they live in `/tmp/oco-podman-<uid>/<store>-<boot id>` (created 0700, and refused
when another user owns it; `<store>` tells stores of different cache directories apart), not in the
cache.
Containers use the host's network only (`--network host`); nothing here creates a network.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hack.controlplane.build import cache_root

PODMAN_TIMEOUT = 600


def _hard_limit(kind: int, cap: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


def containers_conf() -> str:
    nofile = _hard_limit(resource.RLIMIT_NOFILE, 1048576)
    nproc = _hard_limit(resource.RLIMIT_NPROC, 32768)
    return f"""\
# Written by hack/image/podman.py: the project's own podman configuration (see its docstring).
[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def storage_conf(root: Path, runroot: Path) -> str:
    return f"""\
# Written by hack/image/podman.py: the project's own container storage.
[storage]
driver = "overlay"
graphroot = "{root}"
runroot = "{runroot}"
"""


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "boot"


@dataclass(frozen=True)
class Podman:
    """`podman` bound to the project's configuration and storage in `home`."""

    home: Path

    @classmethod
    def default(cls) -> Podman:
        podman = cls(cache_root() / "podman")
        podman.prepare()
        return podman

    @property
    def root(self) -> Path:
        return self.home / "storage"

    @property
    def state(self) -> Path:
        # Checked in prepare(): a private directory of this user, not a symlink.
        return Path("/tmp") / f"oco-podman-{os.geteuid()}"  # noqa: S108

    @property
    def session(self) -> Path:
        store = hashlib.sha256(str(self.home).encode()).hexdigest()[:8]
        return self.state / f"{store}-{boot_id()}"

    @property
    def runroot(self) -> Path:
        return self.session / "run"

    @property
    def tmpdir(self) -> Path:
        return self.session / "tmp"

    def prepare(self) -> None:
        """Write the configuration; make the run state's directory ours, without earlier boots'."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(mode=0o700, exist_ok=True)
        owner = self.state.lstat()
        if self.state.is_symlink() or owner.st_uid != os.geteuid() or owner.st_mode & 0o077:
            raise RuntimeError(f"{self.state} is not a private directory of this user: remove it and retry")
        for stale in self.state.iterdir():
            if not stale.name.endswith(f"-{boot_id()}"):
                shutil.rmtree(stale, ignore_errors=True)
        for path, text in (
            (self.home / "containers.conf", containers_conf()),
            (self.home / "storage.conf", storage_conf(self.root, self.runroot)),
        ):
            if not path.exists() or path.read_text() != text:
                path.write_text(text)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.home / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.home / "storage.conf"),
        }

    def command(self, *args: str) -> list[str]:
        podman = shutil.which("podman") or "podman"
        return [
            podman, "--root", str(self.root), "--runroot", str(self.runroot),
            "--tmpdir", str(self.tmpdir), "--storage-driver", "overlay", *args,
        ]  # fmt: skip

    def run(
        self, *args: str, check: bool = True, timeout: float = PODMAN_TIMEOUT, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`podman ARGS`, output captured; raises with podman's stderr when `check` and it fails."""
        done = subprocess.run(
            self.command(*args),
            env=self.env,
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args[:3])} ... failed ({done.returncode}): {done.stderr[-3000:]}"
            )
        return done

    def popen(self, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command(*args), env=self.env, **kwargs)  # type: ignore[call-overload,no-any-return]

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def label(self, name: str, label: str) -> str | None:
        done = self.run(
            "image", "inspect", "--format", f'{{{{ index .Labels "{label}" }}}}', name, check=False
        )
        value = done.stdout.strip()
        return value if done.returncode == 0 and value and value != "<no value>" else None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialises builds between processes (two test runs at once build one image once)."""
        with (self.home / "build.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
