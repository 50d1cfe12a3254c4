"""The scale benchmark: `python -m bench.run` (or `make bench`), see bench/README.md.

It starts a real control plane, the Open Connectors simulator and the operator as a process, and
measures time to Ready against a minimal direct script (the floor), API calls per object on both
sides, idle and restart traffic, Secret churn propagation and the operator's memory.
"""
