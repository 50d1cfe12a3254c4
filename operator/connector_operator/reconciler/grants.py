"""The OAuth half of a remote pass: which grant a create or re-authentication carries, and what
the object says while it waits for a person.

A pass of an OAuth object (spec.oauth) that needs a grant and has none usable ends Stalled:
`AuthorizationRequired` before the instance exists, `ReauthenticationRequired` once the provider
refused its refresh token. Either way the message names the command a person runs, and for a code
grant `status.authorization.url` holds the provider's consent URL, asked of the platform once per
app, callback, scopes and platform (`ObjectState.consent`). A grant is sent once: its keyed digest
goes into status, and a code (or a denied consent's answer) is removed from its Secret once used
or refused (kube/grantsecret.py). A provider's refusal, a code that came back with another state
than the operator's, a denial: each is reported, the grant discarded, and the person asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from connector_operator.api.oauth import CODE_KEY, ERROR_KEY, STATE_KEY
from connector_operator.api.status import Reason
from connector_operator.domain import outcome as outcomes
from connector_operator.domain.desired import Keyed
from connector_operator.domain.grants import (
    Code,
    Denied,
    Grant,
    OAuthInputs,
    RefreshToken,
    Unusable,
    consent_state,
    grant_digest,
    state_matches,
    with_grant,
)
from connector_operator.domain.transition import Facts
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.kube.api import KubeError
from connector_operator.kube.grantsecret import discard
from connector_operator.openconnectors import errors
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Consent, Credentials, Instance
from connector_operator.reconciler.outcomes import Refused
from connector_operator.reconciler.runtime import Runtime

logger = logging.getLogger(__name__)

# Words of a 400 that say the provider refused the grant, not the configuration (the simulator's
# "Unable to exchange the OAuth code for an access token (provider: invalid_grant: ...)"; the real
# platform relays the provider's words as `providerMessage`, open-connectors-api.md section 3).
_GRANT_WORDS = ("oauth", "provider:", "refresh token", "invalid_grant", "authorization code")


@dataclass
class Grants:
    rt: Runtime
    target: Target
    state: ObjectState
    facts: Facts
    inputs: OAuthInputs
    keyed: Keyed
    api_url: str
    credentials: Credentials
    connector_key: str
    gate: AccountGate | None = None

    def _used(self) -> str | None:
        """The digest of the last grant used or refused (this pass's, else status')."""
        authorization = self.state.status.authorization
        return self.facts.grant_digest or (authorization.grant_digest if authorization else None)

    def pending(self) -> Grant | None:
        """The grant in the Secret, unless it was used (or refused) already."""
        grant = self.inputs.grant
        if grant is None:
            return None
        return None if grant_digest(grant, self.keyed) == self._used() else grant

    async def tidy(self) -> None:
        """A grant already used or refused that is still in its Secret (its removal failed, or the
        same denial came twice) goes now: `authorize` waits for it to go."""
        if self.inputs.grant is not None and self.pending() is None:
            await self._discard()

    async def reauthenticate(
        self, instance_id: int, desired: dict[str, Any], prove: Callable[[int], Awaitable[Instance]]
    ) -> Instance:
        """A new grant for the instance this object has: one PATCH with it (the same instance, its
        ID and tags kept). `prove` shows the instance is this object's by the search by its tag
        (reads of the instance may be refused until it has a new grant) and gives the instance as
        listed. A disabled instance is enabled first (the platform leaves it disabled when
        re-authenticated: open-connectors-api.md section 11), so that a failed enable leaves the
        grant unspent. The grant is not sent when the instance this object saw broken is healthy
        again: a re-authentication whose answer was lost (a code works once), in this process or
        before a restart, or one made in the UI meanwhile."""
        found = await prove(instance_id)
        body = await self.body(desired, creating=False)  # or the pass ends: no usable grant
        status = self.state.status
        sent = grant_digest(self.inputs.grant, self.keyed) if self.inputs.grant else None
        healed = status.valid is False or status.disabled is True or self.state.grant_sent == sent
        if healed and found.valid and not found.disabled:
            await self.spent()
            return found
        instances, url, credentials = self.rt.instances, self.api_url, self.credentials
        gate, namespace = self.gate, self.target.namespace
        if found.disabled:
            await instances.enable(url, credentials, instance_id, gate=gate, namespace=namespace)
        self.state.grant_sent = sent
        try:
            instance = await instances.patch(
                url, credentials, instance_id, body, gate=gate, namespace=namespace
            )
        except errors.OpenConnectorsError as error:
            if not isinstance(error, errors.TransportError | errors.ServerError):
                self.state.grant_sent = None  # answered: the grant was not taken
            await self.refused(error, creating=False)
            raise
        await self.spent()
        return await self.reenabled(instance)

    async def body(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """`body` with the pending grant, or the pass ends asking a person for one."""
        grant = self.pending()
        if isinstance(grant, RefreshToken):
            return with_grant(body, grant, creating=creating)
        if isinstance(grant, Code) and state_matches(grant.state, consent_state(self.keyed, self._used())):
            return with_grant(body, grant, creating=creating)
        raise await self.required(reauthenticate=not creating, why=await self._refuse(grant))

    async def spent(self) -> None:
        """The pending grant was used: never sent again, and a code leaves its Secret."""
        grant = self.pending()
        if grant is not None:
            self.facts.grant_digest = grant_digest(grant, self.keyed)
            self.state.grant_refused = self.state.grant_sent = None
            await self._discard()

    async def reenabled(self, instance: Instance) -> Instance:
        """The re-authenticated instance, enabled again if the platform had disabled it after its
        failed refreshes (re-authentication alone leaves it disabled: api doc section 11)."""
        if not instance.disabled:
            return instance
        await self.rt.instances.enable(
            self.api_url, self.credentials, instance.id, gate=self.gate, namespace=self.target.namespace
        )
        return replace(instance, disabled=False)

    async def refused(self, error: errors.OpenConnectorsError, *, creating: bool) -> None:
        """A refusal of a request that carried a grant: a 400 that is the provider refusing the
        grant, or a 401 to a re-authentication (the account's secrets just did the search), spends
        the grant and asks a person again; anything else is the caller's to report."""
        if not isinstance(error, errors.APIError):
            return
        refusing = isinstance(error, errors.BadRequest) and _about_grant(error.message)
        if not (refusing or (isinstance(error, errors.Unauthorized) and not creating)):
            return
        await self.spent()
        why = f"the platform refused the grant: {error.message}"
        raise await self.required(reauthenticate=not creating, why=why)

    async def unauthorized(
        self, error: errors.Unauthorized, probe: Callable[[], Awaitable[None]]
    ) -> errors.OpenConnectorsError | Refused:
        """What a 401 to a call on the instance means: if `probe` (a call with the same account
        secrets on no instance) succeeds, the platform refuses the instance's grant, not the
        account; otherwise the account's error, as any object's."""
        try:
            await probe()
        except (errors.Unauthorized, errors.Forbidden):
            return error
        except errors.OpenConnectorsError as failed:  # no answer either way: retried as such
            return failed
        why = f"the platform refused a call on the instance: {error.message}"
        return await self.required(reauthenticate=True, why=why)

    async def required(self, *, reauthenticate: bool, why: str | None = None) -> Refused:
        """What ends the pass: a person must give a grant (again); the consent URL goes into status."""
        reason = Reason.REAUTHENTICATION_REQUIRED if reauthenticate else Reason.AUTHORIZATION_REQUIRED
        if why is not None:
            self.state.grant_refused = why
        why = self.state.grant_refused
        if self.inputs.from_code:
            self.facts.consent_url = await self._consent_url()
            ask = (
                f"run `kubectl openconnectors authorize {self.target.name} -n {self.target.namespace}` "
                "(the consent URL is in status.authorization.url)"
            )
        else:
            ask = f"put a new refresh token into Secret {self.inputs.secret!r}, key 'refreshToken'"
        head = (
            "The provider no longer accepts this instance's grant (its refresh token was refused)"
            if reauthenticate
            else "The instance needs a person to authorize the app at the provider"
        )
        message = f"{head}{'; ' + why if why else ''}: {ask}"
        return Refused(outcomes.stalled(reason, message, ready=False))

    async def _refuse(self, grant: Grant | None) -> str | None:
        """Why a pending grant that cannot be sent is not used (and discard it), or None if none."""
        match grant:
            case None:
                return None
            case Denied():
                why = f"consent was not given at the provider ({grant.error})"
            case Unusable():
                why = f"the grant in Secret {self.inputs.secret!r} is unusable: {grant.why}"
            case Code():
                why = (
                    f"the code in Secret {self.inputs.secret!r} came back from another consent than "
                    "this object's (its state does not match) and was discarded"
                )
            case RefreshToken():  # sent, never refused here
                return None
        await self.spent()
        return why

    async def _consent_url(self) -> str:
        app = self.inputs.app
        consent = Consent(
            self.connector_key, app.client_id, app.client_secret, app.callback_url, app.scope,
            consent_state(self.keyed, self._used()),
        )  # fmt: skip
        asked = self.keyed("consent", self.api_url, self.connector_key, *map(str, consent.query().values()))
        if self.state.consent is not None and self.state.consent[0] == asked:
            return self.state.consent[1]
        url = await self.rt.instances.consent_url(
            self.api_url, self.credentials, consent, gate=self.gate, namespace=self.target.namespace
        )
        self.state.consent = (asked, url)
        return url

    async def _discard(self) -> None:
        """A code grant's keys leave the Secret, if they are still the ones read."""
        read = {k: v for k, v in self.inputs.read.items() if k in (CODE_KEY, STATE_KEY, ERROR_KEY)}
        if self.rt.kube is None or not self.inputs.from_code or not read:
            return
        try:
            await discard(self.rt.kube, self.target.namespace, self.inputs.secret, read)
        except KubeError as error:  # kept: its digest in status says it is spent
            logger.warning(
                "grant in Secret %s/%s not removed: HTTP %s", self.target.namespace, self.inputs.secret,
                error.status,
            )  # fmt: skip


def _about_grant(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _GRANT_WORDS)
