"""Test-wide fixtures: the real control plane and the simulator, both as real processes."""

pytest_plugins = ["tests.fixtures.kubernetes", "tests.fixtures.simulator", "tests.fixtures.operator"]
