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

Templates cost CPU that every tenant shares (tenant-findings N2), so they are compiled
once per generation of the object, not per pass, within a CPU budget (`CpuBudget`: compile and
render together). What an object keeps between passes is `TemplateMemory`: the generation checked,
the verdict (an InvalidSpec message, kept until the generation changes, whatever wakes the object),
and a keyed digest of what it last rendered with the data's fingerprint: a few hundred bytes. Not the
compiled templates: a maximal key compiles to about 35 KiB, 16 keys to over half a MiB, for every
object that has them. A later pass of the same generation compiles again only when it must render,
which is when the token, the account secrets or the Secret itself changed (reconciler/
tokenexport.py); a pass that finds the Secret as it last rendered it compiles nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from connector_operator.api.names import SHAPE_ANNOTATION, TOKEN_DIGEST_ANNOTATION
from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.domain.desired import Keyed, token_digest
from connector_operator.domain.template import (
    MAX_SECRET_BYTES,
    CpuBudget,
    SecretTemplate,
    TemplateBudgetExceeded,
    TemplateError,
)

__all__ = [
    "TemplateBudgetExceeded",  # re-exported, as TemplateError
    "TemplateError",  # re-exported: the handlers catch it from here
    "TemplateMemory",
    "TokenSecretSpec",
    "Values",
    "checked",
    "compiled",
    "data",
    "rendered_digest",
    "secret_annotations",
    "shape_digest",
    "token_secret_shape",
    "token_secret_spec",
]


@dataclass(slots=True)
class TemplateMemory:
    """What one object keeps of its templates between passes (in its ObjectState): see above."""

    generation: int  # the object's generation the templates were checked for
    refusal: str | None = None  # the InvalidSpec message; None: they compiled within the budget
    # (keyed digest of the templates and values rendered, fingerprint of the data they made)
    rendered: tuple[str, str] | None = None


@dataclass(frozen=True)
class TokenSecretSpec:
    """The Secret as the spec asks for it; `template` once compiled (and so checked) in this pass."""

    type: str = "Opaque"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # the templates as written
    include_account_secrets: bool = False
    template: SecretTemplate | None = field(default=None, compare=False)
    # The object's memory (its ObjectState's own record, not a copy): rendering updates it.
    memory: TemplateMemory | None = field(default=None, compare=False, repr=False)


def token_secret_shape(spec: ConnectorInstanceSpec) -> TokenSecretSpec:
    """The spec's token Secret, its templates as written: nothing compiled, nothing checked."""
    wanted = spec.token_secret
    if wanted is None:
        return TokenSecretSpec()
    template = wanted.template
    return TokenSecretSpec(
        type=wanted.type or "Opaque",
        labels=dict(wanted.labels or {}),
        annotations=dict(wanted.annotations or {}),
        sources=dict(template.data) if template else {},
        include_account_secrets=bool(template and template.include_account_secrets),
    )


def token_secret_spec(spec: ConnectorInstanceSpec) -> TokenSecretSpec:
    """The spec's token Secret, templates compiled; `TemplateError` for one that may not be rendered."""
    return compiled(token_secret_shape(spec))


def checked(
    wanted: TokenSecretSpec, memory: TemplateMemory | None, generation: int
) -> tuple[TokenSecretSpec, TemplateMemory | None]:
    """`wanted` for a pass of this generation, and the object's memory of its templates (None
    without templates). A generation not checked yet is compiled now, within the budget; its
    verdict (`refusal`) stands for every later pass of the generation, which compiles nothing here."""
    if not wanted.sources:
        return wanted, None
    if memory is None or memory.generation != generation:
        memory = TemplateMemory(generation)
        try:
            wanted = compiled(wanted, CpuBudget())
        except TemplateError as error:
            memory.refusal = error.message
    return replace(wanted, memory=memory), memory


def compiled(wanted: TokenSecretSpec, budget: CpuBudget | None = None) -> TokenSecretSpec:
    """`wanted` with its templates compiled, within `budget` (`TemplateBudgetExceeded` past it)."""
    if not wanted.sources or wanted.template is not None:
        return wanted
    # Imported when a spec first has a template: Jinja costs 9 MiB of RSS that an operator whose
    # objects use none does not pay.
    from connector_operator.domain.sandbox import compile_templates

    template = compile_templates(
        wanted.sources, include_account_secrets=wanted.include_account_secrets, budget=budget
    )
    return replace(wanted, template=template)


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
    """The Secret's data: the operator's three keys and the rendered templates (`TemplateError`).
    Compiling (unless this pass did) and rendering share one `CpuBudget`."""
    own = {"token": values.token, "instanceID": values.instance_id, "apiURL": values.api_url}
    if not wanted.sources:
        return own
    budget = CpuBudget()
    if wanted.template is not None:
        budget.charge(wanted.template.cost, "compiling the templates")
    template = compiled(wanted, budget).template
    assert template is not None  # `compiled` compiles templates that are there, or raises
    rendered = {**template.render(values.for_templates(wanted.include_account_secrets), budget), **own}
    size = sum(len(value.encode()) for value in rendered.values())
    if size > MAX_SECRET_BYTES:  # the API server would refuse every write of it
        raise TemplateError(f"the rendered Secret holds {size} bytes, at most {MAX_SECRET_BYTES} fit in one")
    return rendered


def rendered_digest(wanted: TokenSecretSpec, values: Values, keyed: Keyed) -> str:
    """All that rendering `wanted` over `values` depends on, keyed: equal digests, equal data."""
    account = wanted.include_account_secrets
    described = json.dumps(
        [dict(wanted.sources), account, values.for_templates(account)], sort_keys=True, separators=(",", ":")
    )
    return keyed("rendered", described)


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
