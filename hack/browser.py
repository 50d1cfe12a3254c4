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
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hack import apt

# Commands, and the Debian packages that bring them.
COMMANDS = {"chromium": "chromium", "chromedriver": "chromium-driver"}
# pytest workers may each find the browser missing at once: one installs, the others wait for it
# (apt-get itself fails at once on dpkg's lock).
LOCK_PATH = Path(tempfile.gettempdir()) / "open-connectors-operator-browser.lock"


class BrowserMissing(apt.PackagesMissing):
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
            apt.install([COMMANDS[command] for command in absent], absent, error=BrowserMissing, quiet=quiet)
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
