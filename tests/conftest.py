"""Test-wide fixtures: the real control plane and the simulator, both as real processes, and a
hostile platform server for the attacks of issue 9."""

import pytest

pytest_plugins = [
    "tests.fixtures.kubernetes",
    "tests.fixtures.simulator",
    "tests.fixtures.operator",
    "tests.fixtures.hostile_platform",
    "tests.fixtures.peering",
    "tests.fixtures.browser",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, in their order: the workers start the long ones while the short ones
    are still left to even out the end, instead of one long test starting last and running
    alone (longest first). The order is the same on every worker, as xdist requires."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
