"""`kubectl-openconnectors` (the console script and the zipapp's entry point) and
`python -m kubectl_openconnectors`."""

from __future__ import annotations

from kubectl_openconnectors.cli import main

if __name__ == "__main__":
    main()
