"""Exit codes, the same for every command (documented in `--help` and the README), the rule that
turns an API server's refusal into one, and the one error type that carries its code to the
command line.

The rule, by who is refused: the input (a manifest or a request the API server judges invalid or
conflicting, or an admission webhook denies) is 2, a usage error, in every command; the user
(401, 403: credentials, RBAC) or an API server that cannot answer (429, 5xx, no connection) is
5; the named object missing is 3. 1 is left to what the operator says: not Ready, a request it
refused or failed, a change `plan` foresees.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    NOT_READY = 1  # something shown is not Ready, or the operator refused or failed the request
    USAGE = 2  # bad flags or input, also input the API server refuses (click's code for usage errors)
    NOT_FOUND = 3  # the named object does not exist
    TIMEOUT = 4  # --wait ran out of time before the operator handled the request
    API_ERROR = 5  # the Kubernetes API refused (credentials, RBAC) or could not be reached


EXIT_CODES_HELP = (
    "Exit codes: 0 ok (plan: nothing to do); 1 not Ready, or the operator refused or failed the "
    "request (plan: a change is planned); 2 bad flags or input, also input the API server refuses "
    "(HTTP 400, 409, 422, an admission webhook's denial; plan: an error item); 3 not found; "
    "4 timed out waiting; 5 the API server refused you (401, 403: credentials, RBAC) or could not "
    "answer (429, 5xx, unreachable), in every command, plan too."
)
ADMISSION_DENIAL = "admission webhook "  # how the API server words a webhook's denial


def refused_you(status: int | None, message: str) -> bool:
    """Whether an API server's refusal is of the user or of its own state rather than of the input:
    401, 403 (an admission webhook that denies with 403 judged the input instead), 429, 5xx."""
    if not status or status in (401, 429) or status >= 500:  # no status: no answer to judge by
        return True
    return status == 403 and not (ADMISSION_DENIAL in message and "denied the request" in message)


class PluginError(Exception):
    """A failure to report in one line on stderr, ending the command with `code`."""

    def __init__(self, message: str, code: ExitCode, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status  # the API server's HTTP status, when it refused
