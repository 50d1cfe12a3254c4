"""Kubernetes I/O the operator does itself (kopf does the watching): Secrets and status writes."""
