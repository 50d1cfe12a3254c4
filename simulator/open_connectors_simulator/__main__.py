"""`python -m open_connectors_simulator`: the same as the `open-connectors-simulator` command."""

from open_connectors_simulator.cli import main

if __name__ == "__main__":
    main()
