"""Chromium and chromedriver for the browser tests: found on PATH, or installed with apt-get when missing.

The consent test clicks the fake provider's page in a real headless browser (issue 22), and CI runs
`make test` on a fresh Debian machine as root, so `python -m hack.browser` (what `make browser`
calls) installs Debian's `chromium` and `chromium-driver` as a new user would, and prints the two
paths. A second run finds both on PATH and returns at once. Without root or apt-get it says what
to install instead. The browser is Debian's, never one Selenium Manager downloads: the tests hand
Selenium these two paths (tests/fixtures/browser.py).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Commands, and the Debian packages that bring them.
COMMANDS = {"chromium": "chromium", "chromedriver": "chromium-driver"}
APT_TIMEOUT = 900
# pytest workers may each find the browser missing at once: one installs, the others wait for it
# (apt-get itself fails at once on dpkg's lock).
LOCK_PATH = Path(tempfile.gettempdir()) / "open-connectors-operator-browser.lock"


class BrowserMissing(RuntimeError):
    """Chromium or chromedriver is missing and cannot be installed here."""


@dataclass(frozen=True)
class Browser:
    chromium: str
    chromedriver: str


def missing() -> list[str]:
    return [command for command in COMMANDS if shutil.which(command) is None]


def found() -> Browser | None:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    return Browser(chromium, chromedriver) if chromium and chromedriver else None


def _apt_install(packages: list[str], *, quiet: bool) -> None:
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise BrowserMissing(
            f"{', '.join(missing())} not found; install them (Debian: apt-get install "
            f"{' '.join(packages)}) and retry"
        )
    if not quiet:
        print(f"installing {' '.join(packages)} with apt-get (first time only)", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [apt, "update", "-q"],
        [apt, "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise BrowserMissing(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )


def ensure_browser(*, quiet: bool = False) -> Browser:
    """The two paths, installing the missing packages first (apt-get update, then install)."""
    browser = found()
    if browser is not None:
        return browser
    with LOCK_PATH.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        absent = missing()  # another process may have installed them while this one waited
        if absent:
            started = time.monotonic()
            _apt_install([COMMANDS[command] for command in absent], quiet=quiet)
            if not quiet:
                print(f"installed in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    browser = found()
    if browser is None:
        raise BrowserMissing(f"{', '.join(missing())} still not found after installing them")
    return browser


def main() -> None:
    try:
        browser = ensure_browser()
    except BrowserMissing as error:
        sys.exit(f"error: {error}")
    print(f"chromium: {browser.chromium}\nchromedriver: {browser.chromedriver}")


if __name__ == "__main__":
    main()
