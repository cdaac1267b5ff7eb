"""The registry's configuration: typed, frozen dataclasses read from one TOML file and
overridden by `KODOSUMI_REGISTRY_*` environment variables (flags override both, in `cli`).

Top-level keys map to `KODOSUMI_REGISTRY_<KEY>`, keys of a section to
`KODOSUMI_REGISTRY_<SECTION>_<KEY>` (for example `KODOSUMI_REGISTRY_LEASE_RESTART_GRACE=30`).
Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kodosumi.paths import default_state_dir
from kodosumi.telemetry import TelemetryConfig
from kodosumi.tls import DEV_TRUST_DOMAIN

ENV_PREFIX = "KODOSUMI_REGISTRY_"
DEFAULT_LISTEN = "127.0.0.1:7460"


class ConfigError(ValueError):
    """The configuration is unusable; the message names the key."""


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

    def check(self) -> None:
        if self.certificate_lifetime < 10 or self.token_lifetime < 1:
            raise ConfigError("auth: certificate_lifetime >= 10 s and token_lifetime >= 1 s")
        if not 0 < self.grants_cache_seconds <= 10:
            raise ConfigError("auth.grants_cache_seconds: in (0, 10] (the revocation bound)")


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
    # How many changes the log keeps for watchers that resume.
    change_retention: int = 10_000
    # Seconds in-flight calls get to finish on shutdown.
    shutdown_grace: float = 5.0
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # Export of traces and metrics, and the log format (docs/observability.md).
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)

    def check(self) -> None:
        if self.change_retention < 1:
            raise ConfigError("change_retention: must be at least 1")
        self.lease.check()
        self.auth.check()
        try:
            self.telemetry.check()
        except ValueError as e:
            raise ConfigError(str(e)) from None


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> RegistryConfig:
    """Defaults, then the TOML file, then the environment, then `overrides` (flags; None skips).

    `overrides` take dotted section keys as `lease__restart_grace`.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: {e}") from None
        values = _from_mapping(RegistryConfig, data, base=path.parent, where=str(path))
    _merge(values, _from_env(RegistryConfig, os.environ if env is None else env, ENV_PREFIX))
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, name = key.rpartition("__")
        (values.setdefault(section, {}) if section else values)[name] = value
    config: RegistryConfig = _build(RegistryConfig, values)
    config.check()
    return config


# The types a config field may have, and how text (environment) turns into them.
def _coerce(kind: Any, value: Any, where: str, base: Path | None) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value in (None, "") else _coerce(inner[0], value, where, base)
    if typing.get_origin(kind) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{where}: expected a list, not {value!r}")
        stripped = [item.strip() if isinstance(item, str) else item for item in items]
        return tuple(_coerce(str, item, where, base) for item in stripped if item != "")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            if isinstance(value, (bool, float)):
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(f"not a number: {value!r}")
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(f"not a string: {value!r}")
            return value
        if kind is Path:
            p = Path(str(value)).expanduser()
            return base / p if base is not None and not p.is_absolute() else p
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    raise ConfigError(f"{where}: unsupported type {kind}")


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_mapping(
    cls: type[Any], data: Mapping[str, Any], *, base: Path | None, where: str
) -> dict[str, Any]:
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table")
            out[key] = _from_mapping(kind, value, base=base, where=f"{where} [{key}]")  # type: ignore[arg-type]
        else:
            out[key] = _coerce(kind, value, f"{where}: {key}", base)
    return out


def _from_env(cls: type[Any], env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind in _hints(cls).items():
        name = f"{prefix}{key.upper()}"
        if dataclasses.is_dataclass(kind):
            section = _from_env(kind, env, f"{name}_")  # type: ignore[arg-type]
            if section:
                out[key] = section
        elif name in env:
            out[key] = _coerce(kind, env[name], name, None)
    return out


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs = {
        key: _build(hints[key], value) if dataclasses.is_dataclass(hints[key]) else value
        for key, value in values.items()
    }
    return cls(**kwargs)
