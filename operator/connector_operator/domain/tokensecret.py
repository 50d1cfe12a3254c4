"""What the token Secret should be: its type, labels, annotations and data, from the spec.

`spec.tokenSecret` shapes the Secret for the workload that reads it (issue 11): a type such as
`servicebinding.io/...`, labels and annotations for tools like Reloader, and extra keys rendered
from templates (domain/template.py says what they may say, domain/sandbox.py renders them). The
operator's own marks come on top: the token digest annotation, which changes exactly when the
token does (so a checksum or Reloader rolls the workload), and the shape digest, which says what
the Secret was written for, so that a change of type, labels, annotations or templates is seen
from the watch's metadata without reading the Secret. Both digests are HMACs keyed like every
other digest the operator stores: no value, and no guess of one, can be tested against them.
`TemplateError` is domain/template.py's, which imports no Jinja; it is re-exported here, where the
handlers catch it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.api.names import SHAPE_ANNOTATION, TOKEN_DIGEST_ANNOTATION
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.domain.desired import Keyed, token_digest
from connector_operator.domain.template import MAX_SECRET_BYTES, SecretTemplate, TemplateError

__all__ = [
    "TemplateError",  # re-exported: the handlers catch it from here
    "TokenSecretSpec",
    "Values",
    "data",
    "secret_annotations",
    "shape_digest",
    "token_secret_spec",
]


@dataclass(frozen=True)
class TokenSecretSpec:
    """The Secret as the spec asks for it, templates compiled (and so checked)."""

    type: str = "Opaque"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # the templates as written
    template: SecretTemplate | None = None

    @property
    def include_account_secrets(self) -> bool:
        return self.template is not None and self.template.include_account_secrets


def token_secret_spec(spec: ConnectorInstanceSpec) -> TokenSecretSpec:
    """The spec's token Secret; `TemplateError` for a template that may not be rendered."""
    wanted = spec.token_secret
    if wanted is None:
        return TokenSecretSpec()
    template = wanted.template
    if template is not None:
        # Imported when a spec first has a template: Jinja costs 9 MiB of RSS that an operator
        # whose objects use none does not pay.
        from connector_operator.domain.sandbox import compile_templates
    return TokenSecretSpec(
        type=wanted.type or "Opaque",
        labels=dict(wanted.labels or {}),
        annotations=dict(wanted.annotations or {}),
        sources=dict(template.data) if template else {},
        template=(
            compile_templates(template.data, include_account_secrets=bool(template.include_account_secrets))
            if template
            else None
        ),
    )


@dataclass(frozen=True)
class Values:
    """What templates may use. The account secrets reach a template only when it asks for them."""

    token: str = field(repr=False)
    instance_id: str
    api_url: str
    connector_key: str
    instance_name: str
    user_secret: str = field(repr=False)
    organization_secret: str = field(repr=False)

    def for_templates(self, include_account_secrets: bool) -> dict[str, str]:
        values = {
            "token": self.token,
            "instanceID": self.instance_id,
            "apiURL": self.api_url,
            "connectorKey": self.connector_key,
            "instanceName": self.instance_name,
        }
        if include_account_secrets:
            values.update(userSecret=self.user_secret, organizationSecret=self.organization_secret)
        return values


def data(wanted: TokenSecretSpec, values: Values) -> dict[str, str]:
    """The Secret's data: the operator's three keys and the rendered templates (`TemplateError`)."""
    own = {"token": values.token, "instanceID": values.instance_id, "apiURL": values.api_url}
    if wanted.template is None:
        return own
    rendered = {**wanted.template.render(values.for_templates(wanted.include_account_secrets)), **own}
    size = sum(len(value.encode()) for value in rendered.values())
    if size > MAX_SECRET_BYTES:  # the API server would refuse every write of it
        raise TemplateError(f"the rendered Secret holds {size} bytes, at most {MAX_SECRET_BYTES} fit in one")
    return rendered


def shape_digest(wanted: TokenSecretSpec, user_secret: str, organization_secret: str, keyed: Keyed) -> str:
    """What the Secret is written for besides the token: type, labels, annotations, templates, and
    (only when templates use them) the account secrets. Keyed: values go in, none can come out."""
    account = [user_secret, organization_secret] if wanted.include_account_secrets else []
    described = json.dumps(
        [wanted.type, dict(wanted.labels), dict(wanted.annotations), dict(wanted.sources), account],
        sort_keys=True,
        separators=(",", ":"),
    )
    return keyed("shape", described)


def secret_annotations(wanted: TokenSecretSpec, values: Values, keyed: Keyed) -> dict[str, str]:
    """The user's annotations and the operator's two."""
    return {
        **wanted.annotations,
        TOKEN_DIGEST_ANNOTATION: token_digest(values.token, keyed),
        SHAPE_ANNOTATION: shape_digest(wanted, values.user_secret, values.organization_secret, keyed),
    }
