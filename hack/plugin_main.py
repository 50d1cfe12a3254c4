"""The zipapp's `__main__.py` (hack/plugin.py copies it in): `kubectl-openconnectors`.

Imported from the zip, every start would compile the kubernetes client's thousand modules again
(about 4 s: a zip gets no `__pycache__`). So the first run unpacks the archive into the user's
cache directory, keyed by the archive's digest, and runs from there, where Python keeps the
compiled files; later runs start in about half a second. Without a writable cache it runs from
the zip, only slower. Older versions' directories are removed when a new one is unpacked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

MARKER = "kubectl_openconnectors"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kubectl-openconnectors"


def unpacked(archive: Path, root: Path) -> Path | None:
    """The directory holding the archive's files (unpacked now if needed), or None."""
    target = root / hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    if (target / MARKER).is_dir():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(work)
        try:
            work.rename(target)  # atomic: a concurrent first run may have won, which is as good
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    except OSError:
        return None
    for other in root.iterdir():
        if other != target and not other.name.startswith("."):
            shutil.rmtree(other, ignore_errors=True)
    return target if (target / MARKER).is_dir() else None


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (the user's Python runs this, not the project's)
        sys.exit("kubectl-openconnectors needs Python 3.11 or newer")
    here = Path(sys.path[0])
    if zipfile.is_zipfile(here) and (found := unpacked(here, cache_root())) is not None:
        sys.path[0] = str(found)
        # The compiled files go into our own cache directory, so PYTHONDONTWRITEBYTECODE (which
        # keeps them out of source trees) does not apply: without them every start is slow.
        sys.dont_write_bytecode = False
    from kubectl_openconnectors.cli import main as cli  # from the path set above

    cli()


if __name__ == "__main__":
    main()
