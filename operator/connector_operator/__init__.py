"""Kubernetes operator for SAP Open Connectors connector instances."""
