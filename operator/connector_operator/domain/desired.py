"""The request the platform should see for a ConnectorInstance, and its change-detecting digest.

The digest covers everything that would be sent, secrets included, but stores none of them: it
is an HMAC keyed with the operator's own secret key (kube/digestkey.py), with the object's UID in
the message so that equal requests of two objects differ. Comparing it with the digest last
applied (kept in status) is how the operator knows an update is due without storing values or
doing blind PUTs.

Until issue 9 the key was the object's UID, which anyone who can read the object knows: they
could test guesses of a Secret value offline. Such digests (`LEGACY_PREFIX`, and unprefixed token
digests) are still recognised, so that an upgrade re-keys each status without a platform call.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.configuration import FILTER_NULLS_KEY
from connector_operator.api.names import IDENTITY_TAG_PREFIX
from connector_operator.api.spec import ConnectorInstanceSpec, effective_instance_name
from connector_operator.domain.ownership import Identity

DIGEST_PREFIX = "v2:hmac-sha256:"
LEGACY_PREFIX = "hmac-sha256:"  # keyed with the object's UID (before issue 9)


@dataclass(frozen=True)
class Keyed:
    """HMAC-SHA256 with the operator's key, for one object: its UID goes into every message."""

    key: bytes = field(repr=False)
    uid: str

    def __call__(self, *parts: str) -> str:
        message = json.dumps([self.uid, *parts], separators=(",", ":")).encode()
        return DIGEST_PREFIX + hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class DesiredInstance:
    name: str
    connector_key: str
    tags: tuple[str, ...]
    configuration: Mapping[str, str] = field(repr=False)

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "element": {"key": self.connector_key},
            "tags": list(self.tags),
            "configuration": dict(self.configuration),
        }

    def canonical(self, api_url: str) -> str:
        return json.dumps([api_url, self.body()], sort_keys=True, separators=(",", ":"))

    def digest(self, keyed: Keyed, api_url: str = "") -> str:
        """Covers the body and the platform it goes to: a new API URL is a change to apply too."""
        return keyed("request", self.canonical(api_url))

    def legacy_digest(self, uid: str, api_url: str = "") -> str:
        """The digest as it was made before issue 9 (keyed with the UID): for upgrades only."""
        mac = hmac.new(uid.encode(), self.canonical(api_url).encode(), hashlib.sha256)
        return LEGACY_PREFIX + mac.hexdigest()[:32]


def typed_configuration(spec: ConnectorInstanceSpec) -> dict[str, str]:
    """The configuration keys set through typed fields, as the platform's string values."""
    values: dict[str, str] = {}
    if spec.events is not None:
        values["event.notification.enabled"] = "true" if spec.events.enabled else "false"
        if spec.events.vendor_type is not None:
            values["event.vendor.type"] = spec.events.vendor_type.value
        if spec.events.callback_url is not None:
            values["event.notification.callback.url"] = spec.events.callback_url
        if spec.events.polling_interval_minutes is not None:
            values["event.poller.refresh_interval"] = str(spec.events.polling_interval_minutes)
    if spec.filter_response_nulls is not None:
        values[FILTER_NULLS_KEY] = "true" if spec.filter_response_nulls else "false"
    return values


def desired_instance(
    spec: ConnectorInstanceSpec,
    *,
    namespace: str,
    name: str,
    uid: str,
    configuration: Mapping[str, str],
    cluster: str | None = None,
) -> DesiredInstance:
    """`cluster`: the operator's cluster name, if it has one: the instance carries a claim too."""
    # The CRD refuses these already; dropping them here too keeps a spec built in code honest.
    user_tags = [t for t in spec.tags or [] if not reserved(t)]
    return DesiredInstance(
        name=effective_instance_name(spec, namespace, name),
        connector_key=spec.connector_key,
        tags=tuple(sorted(set(user_tags))) + tuple(Identity(uid, namespace, name, cluster).tags()),
        configuration={**configuration, **typed_configuration(spec)},
    )


def reserved(tag: str) -> bool:
    """A tag that is, or could become once the platform stores it, one of the operator's own: in
    any case, with any space around it, or once entities are decoded; and any tag with markup
    (`<`, `>`), which the platform strips (as the CRD refuses them)."""
    if "<" in tag or ">" in tag:
        return True
    return any(f.strip().lower().startswith(IDENTITY_TAG_PREFIX) for f in (tag, html.unescape(tag)))


def attempt_digest(
    request_digest: str, user_secret: str, organization_secret: str, keyed: Keyed, grant: str = ""
) -> str:
    """What a terminal verdict depends on: the request, the account secrets it was sent with and
    an OAuth object's grant (its digest). A stalled object is retried as soon as one changes, and
    never before."""
    if grant:
        return keyed("attempt", request_digest, user_secret, organization_secret, grant)
    return keyed("attempt", request_digest, user_secret, organization_secret)


def token_digest(token: str, keyed: Keyed) -> str:
    """Lets a restarted operator tell whether the token Secret still holds the current token."""
    return keyed("token", token)


def legacy_token_digest(token: str, uid: str) -> str:
    """The token digest as it was made before issue 9 (keyed with the UID, no prefix): for upgrades."""
    return hmac.new(uid.encode(), f"token\x00{token}".encode(), hashlib.sha256).hexdigest()[:32]


def is_legacy(digest: str | None) -> bool:
    """A digest in status made before issue 9: to be checked the old way once, then re-keyed."""
    return digest is not None and not digest.startswith(DIGEST_PREFIX)
