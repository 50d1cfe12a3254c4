"""What the platform does with an instance request, independent of HTTP.

Create and update are the operations whose rules the operator depends on (defaults merged,
required keys checked once, OAuth code demanded, token stability); keeping them in one place lets
every route variant (`/instances`, `/elements/{key}/instances`, the three-part forms) share them,
and makes each update all-or-nothing: everything is validated before anything is changed.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from open_connectors_simulator.catalog import MASK, Catalog, Element, build_catalog
from open_connectors_simulator.faults import CallCounters, FaultState
from open_connectors_simulator.httputil import ApiError, instance_not_found
from open_connectors_simulator.oauth import (
    REFRESH_TOKEN,
    FakeProvider,
    new_refresh_token,
    obtain_grant,
    refresh_instance,
)
from open_connectors_simulator.settings import SimulatorSettings
from open_connectors_simulator.store import Instance, InstanceStore
from open_connectors_simulator.validation import (
    check_external_authentication,
    check_oauth,
    check_provider_data,
    check_required,
    configuration_changes,
    element_reference,
    sanitize_description,
    sanitize_name,
    sanitize_tags,
    validate_common,
)


@dataclass
class SimulatorState:
    settings: SimulatorSettings
    catalog: Catalog
    store: InstanceStore
    faults: FaultState
    counters: CallCounters
    oauth: FakeProvider

    @classmethod
    def from_settings(cls, settings: SimulatorSettings) -> SimulatorState:
        return cls(
            settings=settings,
            catalog=Catalog(build_catalog(closeio_password_required=settings.closeio_password_required)),
            store=InstanceStore(),
            faults=FaultState(
                latency_ms=settings.latency_ms,
                error_rates=dict(settings.error_rates),
                error_status=settings.error_status,
                rotate_on_update=settings.rotate_token_on_update,
                seed=settings.random_seed,
            ),
            counters=CallCounters(),
            oauth=FakeProvider(settings.oauth_code_ttl_seconds),
        )

    def reset(self) -> None:
        self.oauth.reset()
        self.store.reset()
        self.faults.reset()
        self.counters.reset()

    # -- lookups -----------------------------------------------------------------------------

    def element(self, key_or_id: str | int) -> Element:
        element = self.catalog.get(key_or_id)
        if element is None:
            what = "ID" if isinstance(key_or_id, int) or key_or_id.isdigit() else "key"
            raise ApiError(404, f"No element found with {what} {key_or_id}")
        return element

    def instance(self, instance_id: int, element_key_or_id: str | None = None) -> Instance:
        instance = self.store.get(instance_id)
        if instance is None:
            raise instance_not_found(instance_id)
        if element_key_or_id is not None and instance.element is not self.element(element_key_or_id):
            raise instance_not_found(instance_id)
        return instance

    # -- create / update ---------------------------------------------------------------------

    def create_instance(self, body: Mapping[str, Any], path_element: str | None = None) -> Instance:
        reference = element_reference(body)
        if path_element is not None:
            element = self.element(path_element)
            if reference is not None and self.element(reference) is not element:
                raise ApiError(400, "The element in the body does not match the element in the path")
        elif reference is None:
            raise ApiError(400, "Missing required field: element.key")
        else:
            element = self.element(reference)

        name = sanitize_name(body.get("name"))
        raw_tags = body.get("tags")
        # Without tags the platform tags the instance with its own name (doc 5.2).
        tags = [name] if raw_tags is None else sanitize_tags(raw_tags)
        provider_data = check_provider_data(body.get("providerData"))
        description = sanitize_description(body.get("description"))

        configuration = element.defaults
        raw_configuration = body.get("configuration")
        if raw_configuration is not None:
            changes = configuration_changes(raw_configuration)
            configuration.update({key: value for key, value in changes.items() if value is not None})
        external = check_external_authentication(element, body.get("externalAuthentication"), configuration)
        check_oauth(element, provider_data, external)
        configuration = validate_common(configuration)
        check_required(element, configuration, external)
        if element.is_oauth:
            # Last: a request refused for anything else must not burn the code.
            refresh_token = configuration.get(REFRESH_TOKEN) if external == "initial" else None
            grant = obtain_grant(
                self.oauth,
                element,
                configuration,
                provider_data=None if external == "initial" else provider_data,
                refresh_token=refresh_token,
            )
            configuration.update(grant)

        return self.store.create(
            element,
            name=name,
            tags=tags,
            configuration=configuration,
            external_authentication=external,
            description=description,
            provider_data=provider_data,
        )

    def update_instance(self, instance: Instance, body: Mapping[str, Any]) -> Instance:
        """PUT and PATCH alike: provided fields replace, configuration merges over the stored one.

        The doc leaves PUT's treatment of omitted fields unknown (section 10); keeping them is the
        behaviour that cannot destroy data a client did not mention.
        """
        reference = element_reference(body)
        if reference is not None and self.element(reference) is not instance.element:
            raise ApiError(400, "The element of an existing instance cannot be changed")

        name = instance.name if body.get("name") is None else sanitize_name(body["name"])
        tags = instance.tags if body.get("tags") is None else sanitize_tags(body["tags"])
        description = (
            instance.description if "description" not in body else sanitize_description(body["description"])
        )
        configuration = instance.configuration
        changes: dict[str, str | None] = {}
        reauthenticated = False
        if body.get("configuration") is not None:
            changes = configuration_changes(body["configuration"])
            configuration = self._merged_configuration(instance, changes)
            reauthenticated = True
        provider_data = instance.provider_data
        new_provider_data = None
        if body.get("providerData") is not None:
            provider_data = new_provider_data = check_provider_data(body["providerData"])
            check_oauth(instance.element, provider_data, "none")
            reauthenticated = True
        if instance.element.is_oauth:
            # Only a new grant repairs an OAuth instance (oauth.py); exchanged once all else is valid.
            grant = obtain_grant(
                self.oauth,
                instance.element,
                configuration,
                provider_data=new_provider_data,
                refresh_token=new_refresh_token(instance.configuration, changes),
            )
            configuration = {**configuration, **grant} if grant else configuration
            reauthenticated = bool(grant)

        # Everything validated; apply in one go.
        instance.name = name
        instance.description = description
        instance.configuration = configuration
        instance.provider_data = provider_data
        self.store.set_tags(instance, tags)
        if reauthenticated:
            # Re-authentication is how a broken (valid=false) instance is repaired (doc 11).
            instance.valid = True
            instance.failed_refreshes = 0
        if self.faults.rotate_on_update or instance.rotate_token_on_next_update:
            self.store.rotate_token(instance)
            instance.rotate_token_on_next_update = False
        instance.updated = datetime.now(UTC)
        return instance

    def _merged_configuration(self, instance: Instance, changes: Mapping[str, str | None]) -> dict[str, str]:
        merged = dict(instance.configuration)
        secret_keys = instance.element.secret_keys
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            elif value == MASK and key in secret_keys:
                # The mask the platform itself answers with, sent back by a client that echoes
                # a GET or POST body (the vendor's own tests PUT the POST response back): it
                # means "unchanged", never a new secret. The stored value stays.
                continue
            else:
                merged[key] = value
        # Unsetting a key that has an element default falls back to that default.
        configuration = validate_common({**instance.element.defaults, **merged})
        check_required(instance.element, configuration, instance.external_authentication)
        return configuration

    def refresh(self, instance: Instance) -> None:
        """An OAuth refresh attempt, as the platform makes when the instance is read (oauth.py)."""
        refresh_instance(self.oauth, instance)

    def set_disabled(self, instance: Instance, disabled: bool) -> None:
        instance.disabled = disabled
        instance.updated = datetime.now(UTC)

    # -- configuration entries (doc 4.2) -----------------------------------------------------

    def configuration_entries(self, instance: Instance) -> list[dict[str, Any]]:
        """Every configuration key of the element, set or not, then any other key the instance has.

        An unset key reports its default, or else an empty `propertyValue`: the Swagger types the
        value as a string (so not null), and a blank value counts as unset everywhere here (the
        required-key check included)."""
        masked = instance.masked_configuration()
        entries = [
            self._entry(instance, d.key, masked.get(d.key, d.reported_default or ""))
            for d in instance.element.configuration
        ]
        defined = {d.key for d in instance.element.configuration}
        entries += [self._entry(instance, key, value) for key, value in masked.items() if key not in defined]
        return entries

    def configuration_entry(self, instance: Instance, config_id: int) -> dict[str, Any]:
        for entry in self.configuration_entries(instance):
            if entry["id"] == config_id:
                return entry
        raise ApiError(404, f"No configuration found with ID {config_id}")

    def patch_configuration_entry(self, instance: Instance, config_id: int, body: Mapping[str, Any]) -> None:
        entry = self.configuration_entry(instance, config_id)
        if "propertyValue" not in body:
            raise ApiError(400, "Missing required field: propertyValue")
        self.update_instance(instance, {"configuration": {entry["key"]: body["propertyValue"]}})

    @staticmethod
    def _entry(instance: Instance, key: str, value: str) -> dict[str, Any]:
        definition = instance.element.definition(key)
        if definition is not None:
            entry_id = instance.element.id * 1000 + instance.element.configuration.index(definition) + 1
        else:
            # Keys outside the element definition still need a stable id; derive it from the key.
            entry_id = 900_000_000 + zlib.crc32(key.encode()) % 100_000_000
        return {
            "id": entry_id,
            "key": key,
            "name": definition.name if definition else key,
            "description": definition.description if definition else "",
            "propertyValue": value,
            "type": definition.type if definition else "TEXTFIELD_128",
            "required": definition.required if definition else False,
            "active": True,
            "hideFromConsole": definition.hide_from_console if definition else False,
        }


# The one shared state object, reachable from every handler through the application.
STATE_KEY = web.AppKey("simulator.state", SimulatorState)
