"""In-memory account state: the instances, their tokens, and how they are rendered back.

The benchmark drives thousands of calls against thousands of instances, so lookups by id, token and
tag are indexed; listing walks a sorted id list from the cursor. Rendering lives here as well because
masking and "never echo providerData" are properties of the stored data, not of a route.
"""

from __future__ import annotations

import base64
import bisect
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from open_connectors_simulator.catalog import MASK, Element
from open_connectors_simulator.settings import FIRST_INSTANCE_ID

# Every instance belongs to the one simulated account user (doc 6.1 `user`).
SIMULATED_USER: dict[str, Any] = {
    "id": 12345,
    "emailAddress": "simulator@example.com",
    "firstName": "Open Connectors",
    "lastName": "Simulator",
}


def new_token() -> str:
    """32 random bytes in base64: 44 characters ending in `=`, like real instance tokens (doc 2.1)."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Instance:
    id: int
    element: Element
    name: str
    tags: list[str]
    configuration: dict[str, str]
    token: str
    external_authentication: str = "none"
    description: str | None = None
    provider_data: dict[str, Any] | None = None
    valid: bool = True
    disabled: bool = False
    rotate_token_on_next_update: bool = False
    # OAuth refreshes that failed since the last grant (oauth.py: the fifth disables the instance).
    failed_refreshes: int = 0
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    def masked_configuration(self) -> dict[str, str]:
        secret = self.element.secret_keys
        return {
            key: (MASK if key in secret and value else value) for key, value in self.configuration.items()
        }

    def api_json(self) -> dict[str, Any]:
        """The ElementInstance as the platform returns it: secrets masked, providerData never echoed."""
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "createdDate": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            # The Swagger types updatedDate as a number; epoch milliseconds is the usual reading.
            "updatedDate": int(self.updated.timestamp() * 1000),
            "token": self.token,
            "element": self.element.summary_json(),
            "elementId": self.element.id,
            "tags": list(self.tags),
            "provisionInteractions": [],
            "valid": self.valid,
            "disabled": self.disabled,
            "maxCacheSize": 0,
            "cacheTimeToLive": 0,
            "cachingEnabled": False,
            "configuration": self.masked_configuration(),
            "eventsEnabled": self.configuration.get("event.notification.enabled") == "true",
            "traceLoggingEnabled": False,
            "externalAuthentication": self.external_authentication,
            "user": dict(SIMULATED_USER),
        }
        if self.description is not None:
            body["description"] = self.description
        return body

    def raw_json(self) -> dict[str, Any]:
        """Control-API view for tests: unmasked configuration and whatever providerData was sent."""
        body = self.api_json()
        body["configuration"] = dict(self.configuration)
        body["providerData"] = self.provider_data
        body["rotateTokenOnNextUpdate"] = self.rotate_token_on_next_update
        body["failedRefreshes"] = self.failed_refreshes
        return body


class InstanceStore:
    def __init__(self) -> None:
        self._next_id = FIRST_INSTANCE_ID
        self._by_id: dict[int, Instance] = {}
        self._sorted_ids: list[int] = []
        self._by_token: dict[str, int] = {}
        self._by_tag: dict[str, set[int]] = {}

    def reset(self) -> None:
        # Ids keep counting across resets on purpose: a stale id held by a client from an earlier
        # test must never silently address a newer instance.
        self._by_id.clear()
        self._sorted_ids.clear()
        self._by_token.clear()
        self._by_tag.clear()

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[Instance]:
        return [self._by_id[instance_id] for instance_id in self._sorted_ids]

    def get(self, instance_id: int) -> Instance | None:
        return self._by_id.get(instance_id)

    def by_token(self, token: str) -> Instance | None:
        instance_id = self._by_token.get(token)
        return None if instance_id is None else self._by_id.get(instance_id)

    def create(
        self,
        element: Element,
        *,
        name: str,
        tags: list[str],
        configuration: dict[str, str],
        external_authentication: str,
        description: str | None,
        provider_data: dict[str, Any] | None,
    ) -> Instance:
        instance_id = self._next_id
        self._next_id += 1
        token = new_token()
        instance = Instance(
            id=instance_id,
            element=element,
            name=name,
            tags=[],
            configuration=configuration,
            token=token,
            external_authentication=external_authentication,
            description=description,
            provider_data=provider_data,
        )
        self._by_id[instance_id] = instance
        self._sorted_ids.append(instance_id)  # ids are monotonic, so appending keeps the order
        self._by_token[token] = instance_id
        self.set_tags(instance, tags)
        return instance

    def delete(self, instance: Instance) -> None:
        self._by_id.pop(instance.id, None)
        position = bisect.bisect_left(self._sorted_ids, instance.id)
        if position < len(self._sorted_ids) and self._sorted_ids[position] == instance.id:
            del self._sorted_ids[position]
        self._by_token.pop(instance.token, None)
        self._untag(instance)

    def set_tags(self, instance: Instance, tags: list[str]) -> None:
        self._untag(instance)
        instance.tags = list(tags)
        for tag in instance.tags:
            self._by_tag.setdefault(tag, set()).add(instance.id)

    def rotate_token(self, instance: Instance) -> str:
        # The old token stops working at once, as a real re-issue would make it.
        self._by_token.pop(instance.token, None)
        instance.token = new_token()
        self._by_token[instance.token] = instance.id
        return instance.token

    def _untag(self, instance: Instance) -> None:
        for tag in instance.tags:
            members = self._by_tag.get(tag)
            if members is not None:
                members.discard(instance.id)
                if not members:
                    del self._by_tag[tag]

    def search(
        self,
        *,
        tags: Iterable[str] = (),
        search_text: str | None = None,
        element_key: str | None = None,
        after_id: int | None = None,
        limit: int,
    ) -> tuple[list[Instance], bool]:
        """One page of matches in id order, and whether more matches follow it."""
        wanted = list(dict.fromkeys(tags))
        if wanted:
            # All given tags must be present; intersecting the smallest sets first keeps it cheap.
            sets = sorted((self._by_tag.get(tag, set()) for tag in wanted), key=len)
            candidates = set.intersection(*sets) if sets else set()
            ids: list[int] = sorted(candidates)
        else:
            ids = self._sorted_ids
        start = 0 if after_id is None else bisect.bisect_right(ids, after_id)
        needle = search_text.lower() if search_text else None
        page: list[Instance] = []
        for instance_id in ids[start:] if start else ids:
            instance = self._by_id[instance_id]
            if element_key is not None and instance.element.key != element_key:
                continue
            if needle is not None and needle not in instance.name.lower() and needle != instance.element.key:
                continue
            if len(page) == limit:
                return page, True
            page.append(instance)
        return page, False
