"""What an admitted pass asks of the platform (`Request`), and the remote part made ready to run it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connector_operator.api.spec import ConnectorInstanceSpec
from connector_operator.domain.accounts import AccountKey
from connector_operator.domain.desired import Keyed, attempt_digest, desired_instance
from connector_operator.domain.grants import OAuthInputs, grant_digest
from connector_operator.domain.inputs import Resolved
from connector_operator.domain.tokensecret import TokenSecretSpec
from connector_operator.domain.transition import Facts
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.kube.secrets import SecretMeta
from connector_operator.openconnectors.budget import AccountGate
from connector_operator.openconnectors.client import Credentials
from connector_operator.reconciler.grants import Grants
from connector_operator.reconciler.remote import RemotePass
from connector_operator.reconciler.runtime import Key, Runtime


@dataclass(frozen=True)
class Request:
    spec: ConnectorInstanceSpec
    inputs: Resolved  # the configuration and the account secrets, resolved from the Secrets
    facts: Facts
    api_url: str
    secret: TokenSecretSpec = field(default_factory=TokenSecretSpec)  # what the token Secret should be
    gate: AccountGate | None = None  # the account's budget and circuit; None without an account
    account: AccountKey | None = None  # None: the object's own credentials Secret
    oauth: OAuthInputs | None = None  # spec.oauth's app and grant


def remote_pass(
    rt: Runtime, target: Target, state: ObjectState, cache: Mapping[Key, SecretMeta], request: Request
) -> RemotePass:
    """The remote part of the pass, with the digests of what it asks: the request (and where it
    goes), and the request with the account secrets (what a terminal verdict depends on)."""
    inputs = request.inputs
    desired = desired_instance(
        request.spec,
        namespace=target.namespace,
        name=target.name,
        uid=target.uid,
        configuration={
            **inputs.configuration,
            **(request.oauth.app.configuration() if request.oauth else {}),
        },
        cluster=rt.settings.cluster_name,
    )
    keyed = Keyed(rt.digest_key, target.uid)
    digest = desired.digest(keyed, request.api_url)
    credentials = Credentials(inputs.user_secret, inputs.organization_secret)
    # A new grant is a new attempt too: it clears a terminal verdict (CredentialsRejected, say).
    given = request.oauth.grant if request.oauth else None
    grant = grant_digest(given, keyed) if given is not None else ""
    grants = None
    if request.oauth is not None:
        grants = Grants(
            rt, target, state, request.facts, request.oauth, keyed, request.api_url, credentials,
            request.spec.connector_key, request.gate,
        )  # fmt: skip
    return RemotePass(
        rt=rt,
        target=target,
        spec=request.spec,
        state=state,
        cache=cache,
        api_url=request.api_url,
        credentials=credentials,
        desired=desired,
        keyed=keyed,
        digest=digest,
        attempt=attempt_digest(digest, inputs.user_secret, inputs.organization_secret, keyed, grant),
        facts=request.facts,
        gate=request.gate,
        secret=request.secret,
        account=request.account,
        grants=grants,
    )
