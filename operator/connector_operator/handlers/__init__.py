"""The kopf shell: registrations, kopf's errors and Events, start-up. The only package that speaks
kopf; the passes are reconciler/'s. Importing the package registers the handlers."""

from connector_operator.handlers import accounts, instances, liveobjects, secrets, setup

__all__ = ["accounts", "instances", "liveobjects", "secrets", "setup"]
