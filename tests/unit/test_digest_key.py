"""The digests in status, keyed with the operator's own key (issue 9, finding 13), and upgrades.

Until issue 9 every digest was an HMAC keyed with the object's UID, which anyone who may read
the object knows: a guess of a Secret value could be checked offline against `appliedDigest`.
Covers: the new digests depend on the operator's key and on the object, and the old formula
(recomputed here as commit e3b88ed had it) no longer reproduces them; old digests are recognised;
a pass over a status written the old way accepts an unchanged request and a current token without
a platform call and records the re-keyed digests (without moving `lastSyncTime`), and still sees
a changed request or a stale token as such. The key Secret itself (created once, a race of two
starts, a broken key refused) is tested on the API server: tests/integration/test_lifecycle_safety.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from connector_operator.api.spec import parse_spec
from connector_operator.api.status import ConnectorInstanceStatus
from connector_operator.domain.desired import (
    DIGEST_PREFIX,
    DesiredInstance,
    Keyed,
    attempt_digest,
    desired_instance,
    is_legacy,
    legacy_token_digest,
    token_digest,
)
from connector_operator.domain.outcome import success
from connector_operator.domain.transition import Facts, parse_status, status_after
from connector_operator.engine.objects import ObjectState, Target
from connector_operator.engine.secretindex import secret_meta
from connector_operator.kube.secrets import encode
from connector_operator.openconnectors.client import Credentials
from connector_operator.reconciler.remote import RemotePass
from tests.fixtures.runtime import build_runtime

UID = "0b5e7a36-4f7c-4d35-9a55-1f0c7f3c2a10"
KEY = bytes(range(32))
API_URL = "https://api.openconnectors.us2.ext.hana.ondemand.com/elements/api-v2"
SECRET_VALUE = "closeio-Api-Key-secret!"
TOKEN = "token-3d2f1a"
T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-01T00:05:00Z"


def desired(value: str = SECRET_VALUE) -> DesiredInstance:
    spec = parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}})
    return desired_instance(spec, namespace="sales", name="crm", uid=UID, configuration={"username": value})


def uid_keyed(request: DesiredInstance) -> str:
    """appliedDigest as commit e3b88ed computed it: anyone who can read the object can too."""
    canonical = json.dumps([API_URL, request.body()], sort_keys=True, separators=(",", ":"))
    return "hmac-sha256:" + hmac.new(UID.encode(), canonical.encode(), hashlib.sha256).hexdigest()[:32]


def uid_keyed_token(token: str) -> str:
    return hmac.new(UID.encode(), f"token\x00{token}".encode(), hashlib.sha256).hexdigest()[:32]


# --- the digests ----------------------------------------------------------------------------------


def test_a_guess_cannot_be_checked_with_the_uid_alone() -> None:
    applied = desired().digest(Keyed(KEY, UID), API_URL)
    # The attacker knows the UID and guesses the Secret value right: nothing to compare with.
    guess = desired(SECRET_VALUE)
    assert uid_keyed(guess) != applied
    assert applied.removeprefix(DIGEST_PREFIX) not in uid_keyed(guess)
    assert desired().digest(Keyed(UID.encode(), UID), API_URL) != applied  # the UID as the key
    assert token_digest(TOKEN, Keyed(KEY, UID)) != uid_keyed_token(TOKEN)


def test_digests_depend_on_the_key_and_on_the_object() -> None:
    request = desired()
    assert request.digest(Keyed(KEY, UID), API_URL) == request.digest(Keyed(KEY, UID), API_URL)
    assert request.digest(Keyed(KEY, UID), API_URL) != request.digest(Keyed(bytes(32), UID), API_URL)
    assert request.digest(Keyed(KEY, UID), API_URL) != request.digest(Keyed(KEY, "other-uid"), API_URL)
    assert token_digest(TOKEN, Keyed(KEY, UID)) != token_digest(TOKEN, Keyed(KEY, "other-uid"))
    # Parts are kept apart: moving text from one part to the next is another message.
    keyed = Keyed(KEY, UID)
    assert attempt_digest("d", "ab", "c", keyed) != attempt_digest("d", "a", "bc", keyed)


def test_the_key_is_never_shown() -> None:
    assert KEY.hex() not in repr(Keyed(KEY, UID))
    assert str(list(KEY)) not in repr(Keyed(KEY, UID))


def test_digests_made_before_issue_9_are_recognised() -> None:
    assert desired().legacy_digest(UID, API_URL) == uid_keyed(desired())
    assert legacy_token_digest(TOKEN, UID) == uid_keyed_token(TOKEN)
    assert is_legacy(uid_keyed(desired()))
    assert is_legacy(uid_keyed_token(TOKEN))
    assert not is_legacy(desired().digest(Keyed(KEY, UID), API_URL))
    assert not is_legacy(token_digest(TOKEN, Keyed(KEY, UID)))
    assert not is_legacy(None)


# --- an upgrade: one pass over a status written the old way ---------------------------------------


def remote_pass(
    status: ConnectorInstanceStatus, request: DesiredInstance, token_in_secret: str
) -> RemotePass:
    """A pass as `RemotePass.prepare` makes it; the runtime is never reached by what is tested."""
    keyed = Keyed(KEY, UID)
    digest = request.digest(keyed, API_URL)
    # What the Secret watch keeps of the token Secret: metadata and digests of the token.
    token_secret = secret_meta(
        {
            "metadata": {
                "name": "crm-token",
                "namespace": "sales",
                "labels": {"app.kubernetes.io/managed-by": "open-connectors-operator"},
                "ownerReferences": [{"kind": "ConnectorInstance", "uid": UID, "controller": True}],
            },
            "data": encode({"token": token_in_secret, "instanceID": "42", "apiURL": API_URL}),
        },
        KEY,
    )
    spec = parse_spec({"connectorKey": "closeio", "credentialsSecretRef": {"name": "account"}})
    return RemotePass(
        rt=build_runtime(),
        target=Target("sales", "crm", UID, 1, {}),
        spec=spec,
        state=ObjectState(status=status),
        cache={("sales", "crm-token"): token_secret},
        api_url=API_URL,
        credentials=Credentials("user", "organization"),
        desired=request,
        keyed=keyed,
        digest=digest,
        attempt=attempt_digest(digest, "user", "organization", keyed),
        facts=Facts(),
    )


def old_status() -> ConnectorInstanceStatus:
    return parse_status(
        {
            "instanceID": 42,
            "appliedDigest": uid_keyed(desired()),
            "tokenDigest": uid_keyed_token(TOKEN),
            "lastSyncTime": T1,
        }
    )


async def test_an_unchanged_request_and_token_are_re_keyed_without_a_platform_call() -> None:
    upgrade = remote_pass(old_status(), desired(), TOKEN)
    # `rt` is None: any platform call would fail this test with an AttributeError.
    assert await upgrade._converge(remote_due=False) is None
    assert upgrade.facts.applied_digest is None  # no request was applied
    assert upgrade.facts.rekeyed_applied_digest == desired().digest(Keyed(KEY, UID), API_URL)
    assert upgrade.facts.rekeyed_token_digest == token_digest(TOKEN, Keyed(KEY, UID))

    new, patch = status_after(old_status(), success(), upgrade.facts, 1, T2)
    assert patch["appliedDigest"] == upgrade.facts.rekeyed_applied_digest
    assert patch["tokenDigest"] == upgrade.facts.rekeyed_token_digest
    assert "lastSyncTime" not in patch  # nothing was synced
    assert new.last_sync_time == T1


@pytest.mark.parametrize("change", ["request", "token"])
def test_a_change_hidden_behind_an_old_digest_is_still_seen(change: str) -> None:
    request = desired("a-new-value") if change == "request" else desired()
    token = "a-token-the-platform-replaced" if change == "token" else TOKEN
    upgrade = remote_pass(old_status(), request, token)
    if change == "request":
        assert not upgrade._applied()  # the request differs: a PUT follows
        assert upgrade.facts.rekeyed_applied_digest is None
    else:
        assert upgrade._applied()
        assert not upgrade._token_known()  # the Secret is stale: the platform is asked
        assert upgrade.facts.rekeyed_token_digest is None
