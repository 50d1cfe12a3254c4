"""Local stand-in for the SAP Open Connectors platform "instances" API.

The operator and its tests need an Open Connectors account they can break on purpose: this package
serves the same wire API (`/elements/api-v2`) from memory, with a small realistic element catalog and a
control API (`/_sim/...`) for fault injection and inspection. It is a distribution of its own and
imports nothing from the operator (`connector_operator`): it stands in for a third-party service, so
it can only encode what the vendor documents, not what the operator assumes.
"""

from open_connectors_simulator.control import AsyncSimulatorControl, SimulatorControl
from open_connectors_simulator.settings import API_BASE_PATH, CONTROL_BASE_PATH, SimulatorSettings

__all__ = [
    "API_BASE_PATH",
    "CONTROL_BASE_PATH",
    "AsyncSimulatorControl",
    "SimulatorControl",
    "SimulatorSettings",
]
