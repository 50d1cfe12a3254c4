"""Command line: `open-connectors-operator run` starts the operator.

The command is thin: it parses flags (or the matching environment variables) into typed settings
and hands over to the package that owns the behaviour. The local Open Connectors simulator is a
separate distribution with its own command, `open-connectors-simulator`.
"""

from __future__ import annotations

from connector_operator import shutdown

# First of all: in a container this process is PID 1, which ignores a SIGTERM it has no handler
# for, and the imports below take a second or more (shutdown.py).
shutdown.exit_on_signals()

import click  # noqa: E402

from connector_operator.run import run_command  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The installed distribution's version (importlib.metadata), the one pyproject.toml, the chart's
# appVersion and CHANGELOG.md state (tests/contracts/test_versions.py keeps them equal).
@click.version_option(package_name="open-connectors-operator", prog_name="open-connectors-operator")
def cli() -> None:
    """Manage SAP Open Connectors connector instances from Kubernetes."""


cli.add_command(run_command)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
