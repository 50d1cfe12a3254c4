"""kopf handlers: thin orchestration of the layers below. Importing the package registers them."""

from connector_operator.handlers import instances, setup, watch

__all__ = ["instances", "setup", "watch"]
