"""Async client for the Open Connectors platform `/instances` API.

It speaks HTTP through httpx and raises only its own exceptions (`errors`), so no transport
detail leaks into the layers above, and no secret value leaks into any message.
"""
