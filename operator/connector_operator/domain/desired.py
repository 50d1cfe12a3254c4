"""The request the platform should see for a ConnectorInstance, and its change-detecting digest.

The digest covers everything that would be sent, secrets included, but stores none of them: it
is an HMAC keyed with the object's UID. Comparing it with the digest last applied (kept in
status) is how the operator knows an update is due without storing values or doing blind PUTs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector_operator.api.names import IDENTITY_TAG_PREFIX
from connector_operator.api.spec import (
    FILTER_NULLS_KEY,
    ConnectorInstanceSpec,
    effective_instance_name,
)


def identity_tag(uid: str) -> str:
    """The tag that ties a remote instance to exactly one Kubernetes object."""
    return f"{IDENTITY_TAG_PREFIX}uid:{uid}"


def identity_tags(namespace: str, name: str, uid: str) -> list[str]:
    # The name tag is for humans browsing the platform; only the uid tag is trusted.
    return [identity_tag(uid), f"{IDENTITY_TAG_PREFIX}object:{namespace}/{name}"]


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

    def digest(self, salt: str, api_url: str = "") -> str:
        """Covers the body and the platform it goes to: a new API URL is a change to apply too."""
        canonical = json.dumps([api_url, self.body()], sort_keys=True, separators=(",", ":"))
        return "hmac-sha256:" + hmac.new(salt.encode(), canonical.encode(), hashlib.sha256).hexdigest()[:32]


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
) -> DesiredInstance:
    user_tags = [t for t in spec.tags or [] if not t.startswith(IDENTITY_TAG_PREFIX)]
    return DesiredInstance(
        name=effective_instance_name(spec, namespace, name),
        connector_key=spec.connector_key,
        tags=tuple(sorted(set(user_tags))) + tuple(identity_tags(namespace, name, uid)),
        configuration={**configuration, **typed_configuration(spec)},
    )


def keyed_digest(salt: str, *parts: str) -> str:
    """An HMAC of `parts` keyed with `salt` (the object's UID): comparable, and not a copy of the values."""
    return hmac.new(salt.encode(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def attempt_digest(request_digest: str, user_secret: str, organization_secret: str, salt: str) -> str:
    """What a terminal verdict depends on: the request and the account secrets it was sent with.
    A stalled object is retried as soon as either changes, and never before."""
    return keyed_digest(salt, request_digest, user_secret, organization_secret)


def token_digest(token: str, salt: str) -> str:
    """Lets a restarted operator tell whether the token Secret still holds the current token."""
    return keyed_digest(salt, "token", token)
