"""Fixtures of the simulator contract tests: the vendor Swagger and a validator for it.

The simulator process itself comes from `tests.fixtures.simulator`, registered in tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.support import SwaggerValidator

SWAGGER_PATH = Path(__file__).parent / "fixtures" / "open-connectors-instances.swagger.json"


@pytest.fixture(scope="session")
def swagger() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SWAGGER_PATH.read_text())
    return document


@pytest.fixture(scope="session")
def swagger_validator(swagger: dict[str, Any]) -> SwaggerValidator:
    return SwaggerValidator(swagger)
