"""Who the node asks about callers: `[auth]`, the auth provider link."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AuthClientConfig:
    """The auth provider the node asks for roles, revocations and certificates (`[auth]`;
    see docs/security.md). Without an address: the registry the node enrolled with, if any."""

    address: str = ""
    # Roles and groups of a caller are cached this long (revocations are pushed at once).
    grants_cache_seconds: float = 5.0
    # While the auth provider is unreachable, cached grants are used up to this age.
    max_stale_seconds: float = 300.0
    # Certificates for the flows the node hosts (`spiffe://<domain>/flow/<node>/<flow>`).
    flow_identities: bool = True
    # Priced runs are paid through the registry's ledger beside the auth provider: a quoted
    # launch holds its ceiling of the caller's funds, the receipt settles it (docs/market.md).
    ledger: bool = True
