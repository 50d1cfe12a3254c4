"""Make the simulator fixtures available to these tests even before tests/conftest.py registers them.

The plugin is meant to be registered project-wide via `pytest_plugins`; importing it a second time
would start a second simulator process, so it is only loaded here when nobody else did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.support import SwaggerValidator

_PLUGIN = "tests.fixtures.simulator"
SWAGGER_PATH = Path(__file__).parent / "fixtures" / "open-connectors-instances.swagger.json"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(_PLUGIN):
        config.pluginmanager.import_plugin(_PLUGIN)


@pytest.fixture(scope="session")
def swagger() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SWAGGER_PATH.read_text())
    return document


@pytest.fixture(scope="session")
def swagger_validator(swagger: dict[str, Any]) -> SwaggerValidator:
    return SwaggerValidator(swagger)
