"""kopf handlers: thin orchestration of the layers below. Importing the package registers them."""

from connector_operator.handlers import accounts, instances, liveobjects, setup, watch

__all__ = ["accounts", "instances", "liveobjects", "setup", "watch"]
