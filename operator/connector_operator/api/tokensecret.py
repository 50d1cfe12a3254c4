"""The token Secret's shape as the spec asks for it: `spec.tokenSecret`.

Its name, its type (Opaque or a Service Binding type: an allowlist), labels and annotations besides
the operator's own, and extra keys rendered from templates. The schema refuses what the operator
will not write (its own keys and reserved label and annotation prefixes), and the model repeats
those checks for a spec built in code. What a template may say is domain/template.py's.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, model_validator
from pydantic.config import JsonDict

from connector_operator.api.fields import DNS_SUBDOMAIN, Model, cel
from connector_operator.api.names import RESERVED_PREFIX

__all__ = [
    "DATA_KEY",
    "LABEL_VALUE",
    "METADATA_KEY",
    "SECRET_TYPE",
    "TOKEN_SECRET_KEYS",
    "TokenSecret",
    "TokenSecretTemplate",
]

# Keys the operator writes into the token Secret itself; a template may not reuse them.
TOKEN_SECRET_KEYS = ("token", "instanceID", "apiURL")
DATA_KEY = r"^[-._a-zA-Z0-9]+$"
# A label or annotation key: an optional DNS-subdomain prefix and a name of at most 63 characters.
METADATA_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Secret types the operator writes: Opaque, or a Service Binding type (servicebinding.io/<type>).
# An allowlist: other types mean something to someone (kubernetes.io/service-account-token makes
# the API server mint a token; helm.sh/release.v1 is a Helm release record that a platform
# team's next `helm upgrade` would act on).
SECRET_TYPE = r"^(Opaque|servicebinding[.]io/[-._a-zA-Z0-9]{1,63})$"


def _metadata_keys(field: str, what: str) -> JsonDict:
    return cel(
        f"self.all(k, size(k) <= 317 && k.matches('{METADATA_KEY}') && !k.startsWith('{RESERVED_PREFIX}'))",
        f"{what} keys must be valid Kubernetes {what} keys and not start with {RESERVED_PREFIX!r} "
        "(reserved for the operator's own)",
    )


class TokenSecretTemplate(Model):
    include_account_secrets: Annotated[
        bool | None,
        Field(
            alias="includeAccountSecrets",
            description="Lets the templates use `userSecret` and `organizationSecret`, the account's "
            "secrets. Anyone who can read the token Secret can then read them: leave it off unless the "
            "workload needs the whole Authorization header.",
        ),
    ] = None
    data: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]],
        Field(
            description="Extra keys of the token Secret, each rendered from a Jinja template over "
            "`token`, `instanceID`, `apiURL`, `connectorKey`, `instanceName` (and, with "
            "includeAccountSecrets, `userSecret` and `organizationSecret`). Only output, `if`, `~` and "
            "the filters `tojson`, `b64encode`, `upper`, `lower`, `trim`, `default` and `urlencode` are "
            "allowed: no loops, calls or attribute access. Example: "
            '`OC_AUTHORIZATION: "User {{ userSecret }}, Organization {{ organizationSecret }}, Element '
            '{{ token }}"`. A template has at most 300 parts (names, literals, operators) and numbers of '
            "at most 64 digits; the rendered Secret holds at most 1 MiB. All the templates of an object may "
            "take at most 250 ms of CPU to compile and render, checked once per generation. A template the "
            "operator cannot render stalls the object with `InvalidSpec` until the spec changes.",
            min_length=1,
            max_length=16,
            json_schema_extra={
                "x-kubernetes-validations": [
                    cel(
                        f"self.all(k, size(k) <= 253 && k.matches('{DATA_KEY}') && "
                        f"!(k in {list(TOKEN_SECRET_KEYS)!r}))".replace('"', "'"),
                        "template keys must be valid Secret keys other than " + ", ".join(TOKEN_SECRET_KEYS),
                    )
                ]
            },
        ),
    ]


class TokenSecret(Model):
    name: Annotated[
        str | None,
        Field(
            description="Name of the Secret, in this namespace. Defaults to `<name>-token`.",
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN,
        ),
    ] = None
    type: Annotated[
        str | None,
        Field(
            description="Type of the Secret: `Opaque` (the default) or a Service Binding type, "
            "`servicebinding.io/<type>`. Changing it replaces the Secret (a Secret's type cannot "
            "change). Setting type, labels, annotations or template needs an author who may create "
            "Secrets in the namespace (the chart's admission policy).",
            max_length=253,
            pattern=SECRET_TYPE,
        ),
    ] = None
    labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]] | None,
        Field(
            description="Labels of the Secret, besides the operator's own.",
            max_length=32,
            json_schema_extra={"x-kubernetes-validations": [_metadata_keys("labels", "label")]},
        ),
    ] = None
    annotations: Annotated[
        dict[str, Annotated[str, Field(max_length=4096)]] | None,
        Field(
            description="Annotations of the Secret, besides the operator's own (`openconnectors.io/"
            "token-digest` changes whenever the token does: a checksum for rolling workloads).",
            max_length=32,
            json_schema_extra={"x-kubernetes-validations": [_metadata_keys("annotations", "annotation")]},
        ),
    ] = None
    template: Annotated[
        TokenSecretTemplate | None,
        Field(description="Extra keys rendered from templates, for a workload that reads the Secret as is."),
    ] = None

    @model_validator(mode="after")
    def _nothing_reserved(self) -> TokenSecret:
        # Mirrors the CEL rules: a spec built in code must not take the operator's own marks either.
        if self.type is not None and re.fullmatch(SECRET_TYPE, self.type) is None:
            raise ValueError(f"type {self.type[:80]!r} is not written: Opaque or servicebinding.io/<type>")
        for key in [*(self.labels or {}), *(self.annotations or {})]:
            if key.startswith(RESERVED_PREFIX) or re.fullmatch(METADATA_KEY, key) is None:
                raise ValueError(f"label or annotation key {key[:80]!r} is not allowed")
        for key in self.template.data if self.template else ():
            if key in TOKEN_SECRET_KEYS or re.fullmatch(DATA_KEY, key) is None:
                raise ValueError(f"template key {key[:80]!r} is not allowed")
        return self
