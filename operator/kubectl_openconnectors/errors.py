"""Exit codes, the same for every command (documented in `--help` and the README), and the one
error type that carries its code to the command line."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOT_READY = 1  # something shown is not Ready, or the operator refused or failed the request
    USAGE = 2  # bad flags or input (click's own code for usage errors)
    NOT_FOUND = 3  # the named object does not exist
    TIMEOUT = 4  # --wait ran out of time before the operator handled the request
    API_ERROR = 5  # the Kubernetes API refused (credentials, RBAC) or could not be reached


EXIT_CODES_HELP = (
    "Exit codes: 0 ok (plan: nothing to do); 1 not Ready, or the operator refused or failed the "
    "request (plan: a change is planned); 2 usage error (plan: a manifest the API server refuses); "
    "3 not found; 4 timed out waiting; 5 Kubernetes API error (credentials, RBAC, unreachable)."
)


class PluginError(Exception):
    """A failure to report in one line on stderr, ending the command with `code`."""

    def __init__(self, message: str, code: ExitCode, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status  # the API server's HTTP status, when it refused
