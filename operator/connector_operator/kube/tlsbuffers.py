"""The read buffer of each TLS connection: 256 KiB in asyncio by default, 32 KiB here.

asyncio's SSL transport allocates its whole read buffer (`SSLProtocol.max_size`, 256 KiB) when a
connection opens, and keeps it for as long as the connection is pooled. kopf's client to the API
server has no connection limit, so a creation burst of 1,000 objects opened over 200 connections
(its finalizer patches under a saturated API server, bench/README.md): some 50 MiB of buffers,
a third of the operator's peak memory. kopf offers no setting for its pool, so the buffer is what
is bounded. A TLS record carries at most 16 KiB, so a 32 KiB buffer still reads whole records;
large responses (an initial listing) are read in more, smaller steps.

The attribute is CPython's (asyncio/sslproto.py, 3.11 to 3.13); where it is missing, nothing
changes.
"""

from __future__ import annotations

from asyncio import sslproto

READ_BUFFER = 32 * 1024


def bound_read_buffers(size: int = READ_BUFFER) -> bool:
    """Make TLS connections opened from now on allocate `size` bytes to read into; whether it could."""
    if not isinstance(getattr(sslproto.SSLProtocol, "max_size", None), int):
        return False
    sslproto.SSLProtocol.max_size = size
    return True
