"""Test-wide fixtures: the real control plane and the simulator, both as real processes, and a
hostile platform server for the attacks of issue 9."""

pytest_plugins = [
    "tests.fixtures.kubernetes",
    "tests.fixtures.simulator",
    "tests.fixtures.operator",
    "tests.fixtures.hostile_platform",
    "tests.fixtures.peering",
]
