"""The ConnectorInstance resource as typed models: the single source of truth for the CRD.

Nothing in this package does I/O; every other layer depends on it and it depends on none.
"""
