"""The token Secret of one pass: whether it is current without a request, and writing it when not.

What the Secret should hold comes from `domain.tokensecret` (the token, the instance ID and the
platform URL, rendered templates, type, labels, annotations). Whether it holds that is answered
from the Secret watch's metadata, never from a read: after a restart by the token digests the
watch keeps (compared with status), and before a write by a fingerprint of the whole data and
the keyed shape digest. Only a difference costs a request.

Nor are templates rendered to find out: the object's `TemplateMemory` holds a keyed digest of what
it last rendered (templates and values) and the fingerprint of the data that made. When both still
hold and the watch shows that data, the Secret is current without compiling anything; otherwise the
templates are compiled and rendered within their CPU budget (domain/tokensecret.py). Past the budget
the object stalls with InvalidSpec, remembered for its generation (tenant-findings N2).

Compiling and rendering run on a thread of their own (`off_loop`), one object's templates at a time:
even within the budget, a quarter of a second of CPU on the event loop holds up every other tenant's
passes, the watches and /healthz, and 60 such objects created at once held it for 12 s. On the
thread the loop keeps running (it takes the GIL back every few milliseconds), and the one thread
keeps all the templates together to one core's share at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from connector_operator.api.status import ConnectorFacts, ConnectorInstanceStatus, Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.desired import Keyed, is_legacy, token_digest
from connector_operator.domain.tokensecret import (
    TemplateBudgetExceeded,
    TemplateError,
    TokenSecretSpec,
    Values,
    data,
    rendered_digest,
    secret_annotations,
    shape_digest,
)
from connector_operator.domain.transition import Observed
from connector_operator.engine.objects import Target
from connector_operator.engine.wakeups import Key
from connector_operator.kube.secrets import (
    SecretConflict,
    SecretMeta,
    Secrets,
    SecretShape,
    encode,
    fingerprint,
)
from connector_operator.openconnectors.client import Credentials, Instance
from connector_operator.reconciler.outcomes import Refused, TokenSecretConflict

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TEMPLATES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="templates")


async def off_loop(work: Callable[[], T]) -> T:
    """`work` (compiling or rendering templates) on the templates' thread, the loop free meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_TEMPLATES, work)


@dataclass(frozen=True)
class TokenExport:
    secrets: Secrets  # the one service it uses: it writes the token Secret, nothing else
    target: Target
    cache: Mapping[Key, SecretMeta]  # the watch's metadata of Secrets, no values
    name: str  # of the token Secret
    api_url: str
    credentials: Credentials
    keyed: Keyed
    secret: TokenSecretSpec
    connector_key: str
    instance_name: str

    def known(self, status: ConnectorInstanceStatus) -> tuple[bool, str | None]:
        """Whether the Secret is ours and consistent with status (after a restart, the token is
        not in memory), and the token digest keyed the new way when status holds a legacy one.
        The watch keeps digests of a token Secret's token, not the token (kube.secrets.TokenFacts)."""
        view = self.cache.get((self.target.namespace, self.name))
        facts = view.token if view is not None else None
        if view is None or facts is None or facts.digest is None:
            return False, None  # the platform is asked: one GET, and the Secret is written if it differs
        if is_legacy(status.token_digest):
            current = facts.legacy_digest == status.token_digest
        else:
            current = facts.digest == status.token_digest
        known = (
            current
            and view.managed
            and view.owner_uid == self.target.uid
            and facts.instance_id == str(status.instance_id)
            and facts.api_url == self.api_url
            and self.shaped(view)
        )
        return known, facts.digest if known and is_legacy(status.token_digest) else None

    async def write(self, current: Instance) -> None:
        """Write the Secret for `current`, unless the watch shows it holds exactly that already."""
        namespace = self.target.namespace
        values = Values(
            token=current.token,
            instance_id=str(current.id),
            api_url=self.api_url,
            connector_key=self.connector_key,
            instance_name=self.instance_name,
            user_secret=self.credentials.user_secret,
            organization_secret=self.credentials.organization_secret,
        )
        # Not in the watch cache: try to create it; a 409 makes write_token look before it writes.
        existing = self.cache.get((namespace, self.name))
        ours = (
            existing is not None
            and existing.managed
            and existing.owner_uid == self.target.uid
            and self.shaped(existing)
        )
        memory, digest = self.secret.memory, None
        if memory is not None and self.secret.sources:
            digest = rendered_digest(self.secret, values, self.keyed)
            if ours and existing is not None and memory.rendered == (digest, existing.fingerprint):
                return  # as rendered last time, and the watch shows it: nothing compiled, nothing sent
        content = await self._content(values)
        printed = fingerprint(encode(content))
        if memory is not None and digest is not None:
            memory.rendered = (digest, printed)
        if ours and existing is not None and existing.fingerprint == printed:
            return  # the watch shows it holds exactly this: no request at all
        shape = SecretShape(
            self.secret.type, self.secret.labels, secret_annotations(self.secret, values, self.keyed)
        )
        try:
            owner = self.target.owner
            if await self.secrets.write_token(namespace, self.name, owner, content, existing, shape):
                logger.info("wrote token Secret %s/%s", namespace, self.name)
        except SecretConflict as conflict:
            raise TokenSecretConflict(self.name, str(conflict)) from None

    async def _content(self, values: Values) -> dict[str, str]:
        """The Secret's data; a template that cannot be rendered stalls the object. Past the CPU
        budget, that is remembered for the generation: its next passes compile nothing."""
        wanted = self.secret
        try:
            return await off_loop(lambda: data(wanted, values)) if wanted.sources else data(wanted, values)
        except TemplateError as error:
            if isinstance(error, TemplateBudgetExceeded) and self.secret.memory is not None:
                self.secret.memory.refusal = error.message
            message = f"Invalid spec: spec.tokenSecret.template: {error.message}"
            raise Refused(outcomes.stalled(Reason.INVALID_SPEC, message)) from None

    def shaped(self, view: SecretMeta) -> bool:
        """Whether the Secret was written for this spec's type, labels, annotations and templates.
        One written before issue 11 carries no shape: it is what a spec without them asks for, and
        gets its annotations with the next token, rather than a write (and a GET) per object."""
        if view.type != self.secret.type:
            return False
        if view.shape is None:
            return self.secret == TokenSecretSpec()
        credentials = self.credentials
        wanted = shape_digest(
            self.secret, credentials.user_secret, credentials.organization_secret, self.keyed
        )
        return view.shape == wanted


def observed(current: Instance, keyed: Keyed, connector_key: str) -> Observed:
    """What status records of the instance the platform reports (the token only as a digest)."""
    return Observed(
        instance_id=current.id,
        token_digest=token_digest(current.token, keyed),
        valid=current.valid,
        disabled=current.disabled,
        connector=ConnectorFacts(
            key=current.element_key or connector_key,
            name=current.element_name,
            hub=current.hub,
            authentication_type=current.authentication_type,
        ),
    )
