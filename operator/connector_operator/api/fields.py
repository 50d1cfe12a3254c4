"""Schema building blocks shared by the resources: the model base, CEL rules, name and URL shapes.

ConnectorInstance (spec.py) and the two account kinds (account.py) describe Secret references and
platform URLs the same way, so that the API server checks them the same way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# The only shape of platform API URL the operator calls: strict enough that every URL parser (ours,
# httpx's, the platform's) reads the same host and path from it, and that no query, fragment, user
# information or escaped character can steer the request (domain/hosts.py checks the same). Host
# labels are never empty (`a..b` is no name, and a `*` of the allowlist must not match nothing);
# a path segment is never `.` or `..` (nor only dots): httpx collapses those, so the path sent
# would not be the path checked. No lookahead (Go's RE2 has none): a segment is dots, then a
# character that is not one, then anything. One trailing `/` is allowed (users paste the URL so),
# and dropped wherever the operator takes the URL into use (domain/accounts.py, `api_url_of`).
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
API_URL_PATTERN = (  # three capturing groups (no names: not every schema tool reads them)
    r"^(https?)://"  # group 1: scheme
    rf"({_HOST_LABEL}(?:[.]{_HOST_LABEL})*[.]?|\[[0-9A-Fa-f:.]+\])"  # group 2: host
    r"(?::([0-9]{1,5}))?"  # group 3: port
    r"(?:/[.]*[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/elements/api-v2/?$"
)
API_URL_SHAPE = (
    "Base URL of the Open Connectors platform API: `https://<host>[:<port>]/.../elements/api-v2`, "
    "with no query, fragment, user information or escaped characters; a trailing `/` is allowed "
    "and dropped (the status, the token Secret and the requests use the URL without it). The host "
    "must be in the operator's allowed API hosts (`--allowed-api-hosts`; plain http only with "
    "`--allow-insecure-http`), or the object stalls with `APIHostNotAllowed` and nothing is sent."
)
CONNECTOR_KEY_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
# One character that is not ASCII whitespace, spelled out. Never `\S`, `\s`, `\d`, `\w` or `\b` in
# a pattern: the API server reads them ASCII-only (Go's RE2, which does not even count `\v` as
# space) and the operator Unicode-wide (pydantic's engine), so the API server stored tags the
# operator then refused (tests/api/test_pattern_agreement.py). Explicit classes mean the same to both.
NOT_SPACE = r"[^ \t\n\r\f\v]"


def cel(rule: str, message: str, **extra: str) -> JsonDict:
    """One `x-kubernetes-validations` entry: a CEL rule the API server checks on every write."""
    return {"rule": rule, "message": message, **extra}


class Model(BaseModel):
    """Common configuration: camelCase on the wire, unknown fields refused in code too."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


SecretName = Annotated[
    str,
    Field(
        description="Name of a Secret in the same namespace as the ConnectorInstance.",
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
    ),
]
