"""Start-up settings of the simulator and the few fixed paths everything else agrees on.

Kept separate so the CLI, the app factory and the control client share one definition of the
paths and defaults instead of repeating string literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

API_BASE_PATH = "/elements/api-v2"
CONTROL_BASE_PATH = "/_sim"

# The issue asks for a 1 MiB cap: large enough for any real instance body, small enough that a
# runaway client cannot make the simulator buffer unbounded data.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

# Ids start near the magnitude seen in vendor samples (471196 in the docs) so that clients which
# accidentally treat ids as small integers or as strings stand out.
FIRST_INSTANCE_ID = 400_000


@dataclass(frozen=True)
class SimulatorSettings:
    """Everything the simulator needs to start; faults can still be changed at run time."""

    organization_secret: str
    user_secret: str
    latency_ms: int = 0
    error_rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    error_status: int = 503
    rotate_token_on_update: bool = False
    # The doc (section 3) says list endpoints answer 404 instead of [] when nothing matches; the
    # switch exists because whether an *unfiltered* empty account does the same is unknown.
    empty_list_404: bool = True
    # The doc leaves open whether Close.io's `password` is required (section 8.1).
    closeio_password_required: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    random_seed: int | None = None
    # How long a code of the fake OAuth provider can be exchanged (oauth.py).
    oauth_code_ttl_seconds: float = 120.0

    def __repr__(self) -> str:
        # Never let the secrets leak into logs or tracebacks through a dataclass repr.
        return (
            f"SimulatorSettings(latency_ms={self.latency_ms}, error_rates={dict(self.error_rates)}, "
            f"rotate_token_on_update={self.rotate_token_on_update}, empty_list_404={self.empty_list_404}, "
            f"closeio_password_required={self.closeio_password_required}, "
            f"max_body_bytes={self.max_body_bytes}, oauth_code_ttl_seconds={self.oauth_code_ttl_seconds})"
        )
