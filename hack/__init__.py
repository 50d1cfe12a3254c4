"""Developer tooling that is not shipped: the local control plane, the demo and the benchmark."""
