"""Command line: `open-connectors-operator run` starts the operator, `... simulator` the local API.

The commands are thin: they parse flags (or the matching environment variables) into typed
settings and hand over to the package that owns the behaviour.
"""

from __future__ import annotations

import click

from connector_operator.run import run_command
from connector_operator.simulator.cli import simulator_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Manage SAP Open Connectors connector instances from Kubernetes."""


cli.add_command(run_command)
cli.add_command(simulator_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
