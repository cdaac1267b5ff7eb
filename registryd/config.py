"""The registry's configuration: typed, frozen dataclasses read from one TOML file and
overridden by `KODOSUMI_REGISTRY_*` environment variables (flags override both, in `cli`).

Top-level keys map to `KODOSUMI_REGISTRY_<KEY>`, keys of a section to
`KODOSUMI_REGISTRY_<SECTION>_<KEY>` (for example `KODOSUMI_REGISTRY_LEASE_RESTART_GRACE=30`).
Relative paths in the file are relative to the file's folder. Errors (`ConfigError`) name
the file and line of the bad key, or the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kodosumi.config_loader import ConfigError, load
from kodosumi.paths import default_state_dir
from kodosumi.telemetry import TelemetryConfig
from kodosumi.tls import DEV_TRUST_DOMAIN

__all__ = [
    "DEFAULT_LISTEN",
    "ENV_PREFIX",
    "AuthConfig",
    "BadgeLevel",
    "BadgesConfig",
    "ConfigError",
    "LeaseConfig",
    "LedgerConfig",
    "RegistryConfig",
    "TlsConfig",
    "load_config",
]

ENV_PREFIX = "KODOSUMI_REGISTRY_"
_LEVEL_NAME = re.compile(r"[a-z0-9_-]{1,32}")
DEFAULT_LISTEN = "127.0.0.1:7460"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    # Interval a node gets when it names none.
    default_heartbeat_interval: float = 10.0
    # Intervals a node may ask for; others are refused with INVALID_ARGUMENT.
    min_heartbeat_interval: float = 1.0
    max_heartbeat_interval: float = 300.0
    # Lease TTL = heartbeat interval x ttl_factor: this many heartbeats may go missing.
    ttl_factor: float = 3.0
    # After a restart, no node that was ONLINE expires sooner than this.
    restart_grace: float = 60.0
    # How often expired leases are looked for and renewed leases persisted.
    sweep_interval: float = 1.0

    def check(self) -> None:
        if not 0 < self.min_heartbeat_interval <= self.max_heartbeat_interval:
            raise ConfigError("lease: need 0 < min_heartbeat_interval <= max_heartbeat_interval")
        if not (
            self.min_heartbeat_interval
            <= self.default_heartbeat_interval
            <= self.max_heartbeat_interval
        ):
            raise ConfigError("lease.default_heartbeat_interval: must lie within the bounds")
        if self.ttl_factor < 1:
            raise ConfigError("lease.ttl_factor: must be at least 1")
        if self.restart_grace < 0 or self.sweep_interval <= 0:
            raise ConfigError("lease: restart_grace must be >= 0 and sweep_interval > 0")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """Where the registry's credentials come from.

    Nothing set: a development CA in `<state_dir>/pki`. `ca_cert` + `ca_key`: an existing CA
    (shared with the nodes) issues the registry's certificate. `ca_cert` + `cert` + `key`:
    use that certificate as it is.
    """

    # Trust domain of a development CA created here (ignored for an existing CA).
    trust_domain: str = DEV_TRUST_DOMAIN
    ca_cert: Path | None = None
    ca_key: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    # More DNS names or IP addresses nodes may dial the registry by (its certificate's SANs).
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The auth provider beside the registry (`[auth]`, see docs/security.md). It needs the CA
    key: the development CA or `tls.ca_cert` + `tls.ca_key`; with a bare certificate it is off.
    """

    enabled: bool = True
    # Enrollment port: TLS without client certificates, serving Enroll alone. Empty: the
    # registry's port + 1 (port 0 when the registry listens on port 0).
    enroll_listen: str = ""
    # What enrollment tokens tell enrollees to dial; empty: the local dial addresses.
    enroll_advertise: str = ""
    registry_advertise: str = ""
    # Lifetime of issued certificates (renewed at two thirds) and of enrollment tokens.
    certificate_lifetime: float = 86_400.0
    token_lifetime: float = 86_400.0
    # How long nodes may cache an identity's roles and groups (revocations are pushed).
    grants_cache_seconds: float = 5.0
    # User names (or SPIFFE ids) that are admins whatever the database says (bootstrap).
    admins: tuple[str, ...] = ()
    # Host names the CA signs for any node without their being named in its token or
    # approved: DNS names or `*.suffix` patterns, and IP networks (registryd/auth/host_names).
    allowed_dns: tuple[str, ...] = ("localhost",)
    allowed_ips: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def check(self) -> None:
        if self.certificate_lifetime < 10 or self.token_lifetime < 1:
            raise ConfigError("auth: certificate_lifetime >= 10 s and token_lifetime >= 1 s")
        if not 0 < self.grants_cache_seconds <= 10:
            raise ConfigError("auth.grants_cache_seconds: in (0, 10] (the revocation bound)")
        try:
            for network in self.allowed_ips:
                ipaddress.ip_network(network, strict=False)
        except ValueError as e:
            raise ConfigError(f"auth.allowed_ips: {e}") from None


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Budgets and settlement (`[ledger]`, docs/market.md): a double-entry ledger in the
    registry's database, served when the auth provider is (its accounts are identities)."""

    enabled: bool = True
    # A hold (reserved funds) lapses after this unless its seller asks for another time.
    hold_ttl_seconds: float = 86_400.0
    # The longest a seller may hold a buyer's funds.
    max_hold_ttl_seconds: float = 7 * 86_400.0

    def check(self) -> None:
        if not 0 < self.hold_ttl_seconds <= self.max_hold_ttl_seconds:
            raise ConfigError("ledger: need 0 < hold_ttl_seconds <= max_hold_ttl_seconds")


@dataclass(frozen=True, slots=True)
class BadgeLevel:
    """What a flow on a node must show over the window to hold a badge of this level
    (`[badges.levels.<name>]`). Unset bounds do not apply."""

    # successes / (successes + failures) at least this.
    success_rate: float = 0.0
    # The 95th percentile of run time at most this many seconds.
    p95_seconds: float | None = None
    # The node ONLINE (its lease held) at least this share of the window.
    availability: float = 0.0
    # At least this many runs in the window: fewer say nothing.
    min_runs: int = 1

    def check(self, name: str) -> None:
        where = f"badges.levels.{name}"
        if not _LEVEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a level name is 1-32 of a-z 0-9 _ -")
        for key in ("success_rate", "availability"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"{where}.{key}: a share from 0 to 1")
        if self.p95_seconds is not None and not 0 < self.p95_seconds <= 366 * 86_400:
            raise ConfigError(f"{where}.p95_seconds: more than 0 s and at most a year")
        if self.min_runs < 1:
            raise ConfigError(f"{where}.min_runs: at least 1")


@dataclass(frozen=True, slots=True)
class BadgesConfig:
    """Service-level badges from measured service (`[badges]`, docs/market.md)."""

    # The window measurements cover: nodes report over it, availability is taken over it.
    window: float = 86_400.0
    # How long a service-level badge is valid: short, since offline verifiers cannot see a
    # revocation. Renewed while the level holds, once half of it has passed.
    lifetime: float = 86_400.0
    # How often the registry measures and issues, renews or revokes badges.
    evaluate_interval: float = 60.0
    # The levels, best first (a flow holds the first one it meets). None: no badges.
    levels: dict[str, BadgeLevel] = field(default_factory=dict)

    def check(self) -> None:
        if not 0 < self.window <= 366 * 86_400:
            raise ConfigError("badges.window: more than 0 s and at most a year")
        if not 0 < self.lifetime <= 366 * 86_400:
            raise ConfigError("badges.lifetime: more than 0 s and at most a year")
        if self.evaluate_interval <= 0:
            raise ConfigError("badges.evaluate_interval: more than 0 s")
        for name, level in self.levels.items():
            level.check(name)


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    # The registry's id: its certificate names `spiffe://<domain>/registry/<registry_id>`.
    registry_id: str = "registry"
    # `host:port`; port 0 picks a free port.
    listen: str = DEFAULT_LISTEN
    # HOST[:PORT]s nodes and people dial (tokens, certificate names); empty: derived from
    # `listen` (0.0.0.0 -> this host's addresses; kodosumi/addresses.py).
    advertise: tuple[str, ...] = ()
    state_dir: Path = field(default_factory=lambda: default_state_dir() / "registry")
    # Plaintext, no identities: every caller is an anonymous admin with the node role.
    insecure: bool = False
    # Plaintext on a non-loopback address too (kodosumi/plaintext.py): off unless said.
    insecure_allow_remote: bool = False
    # How many changes the log keeps for watchers that resume.
    change_retention: int = 10_000
    # Streams (WatchRegistry, WatchAuthState) one identity may hold open at once; 0: no
    # limit. A node needs two; each stream costs the registry a bounded amount.
    open_streams: int = 64
    # Seconds in-flight calls get to finish on shutdown.
    shutdown_grace: float = 5.0
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    badges: BadgesConfig = field(default_factory=BadgesConfig)
    # Export of traces and metrics, and the log format (docs/observability.md).
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)

    def check(self) -> None:
        if self.change_retention < 1:
            raise ConfigError("change_retention: must be at least 1")
        if self.open_streams < 0:
            raise ConfigError("open_streams: must not be negative (0: no limit)")
        self.lease.check()
        self.auth.check()
        self.ledger.check()
        self.badges.check()
        try:
            self.telemetry.check()
        except ValueError as e:
            raise ConfigError(str(e)) from None


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> RegistryConfig:
    """Defaults, then the TOML file, then the environment, then `overrides` (flags; None skips).

    `overrides` take dotted section keys as `lease__restart_grace`. The loader is the one
    both daemons share (`kodosumi.config_loader`).
    """
    config = load(
        RegistryConfig,
        path,
        env=os.environ if env is None else env,
        prefix=ENV_PREFIX,
        overrides=overrides,
    )
    config.check()
    return config
