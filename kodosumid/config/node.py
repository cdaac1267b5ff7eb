"""The whole node configuration (`NodeConfig`, `[node]` and `[tls]`), composed of the
tables' own dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kodosumi.paths import default_state_dir
from kodosumi.telemetry import TelemetryConfig
from kodosumid.config.a2a import A2AConfig
from kodosumid.config.auth import AuthClientConfig
from kodosumid.config.executors import PoolConfig, RayConfig
from kodosumid.config.flows import FlowEntry
from kodosumid.config.network import DiscoveryConfig, PeersConfig, RegistryClientConfig
from kodosumid.files.model import FilesConfig
from kodosumid.observability.rules import AlertsConfig
from kodosumid.quotas import QuotasConfig

DEFAULT_LISTEN = "127.0.0.1:7470"


@dataclass(frozen=True, slots=True)
class TlsPaths:
    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str = ""
    listen: str = DEFAULT_LISTEN
    state_dir: Path = field(default_factory=default_state_dir)
    insecure: bool = False
    # Plaintext on a non-loopback address too (kodosumi/plaintext.py): off unless said.
    insecure_allow_remote: bool = False
    tls: TlsPaths | None = None
    trust_domain: str = ""
    ray: RayConfig = field(default_factory=RayConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    # None: the example flows.
    flows: tuple[FlowEntry, ...] | None = None
    # Folders put on the executors' sys.path so entrypoints import (default: the working dir).
    python_path: tuple[str, ...] = ()
    shutdown_grace_seconds: float = 10.0
    cancel_grace_seconds: float = 5.0
    admins: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    # "NORMAL" survives a process crash; "FULL" also survives power loss (see docs/operations.md).
    store_synchronous: str = "NORMAL"
    max_message_bytes: int = 4 * 1024 * 1024
    # Finished executions (and their events) are deleted this long after they ended; 0 keeps
    # them forever.
    retention_seconds: float = 0.0
    # HOST[:PORT]s peers and clients dial (registry entry, NodeInfo, certificate names);
    # empty: derived from the listen address (kodosumi/addresses.py).
    advertise: tuple[str, ...] = ()
    # Empty: no registry. Registration, LAN discovery and peer calls:
    # kodosumid/network/peer_network.py.
    registry_address: str = ""
    registry: RegistryClientConfig = field(default_factory=RegistryClientConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    peers: PeersConfig = field(default_factory=PeersConfig)
    auth: AuthClientConfig = field(default_factory=AuthClientConfig)
    # Export of traces and metrics, and the log format (docs/observability.md).
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    # Alert rules and webhooks (kodosumid/observability/rules.py).
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    # Per-identity limits (kodosumid/quotas.py).
    quotas: QuotasConfig = field(default_factory=QuotasConfig)
    a2a: A2AConfig = field(default_factory=A2AConfig)
    # Files in and out of runs (kodosumid/files/).
    files: FilesConfig = field(default_factory=FilesConfig)
    # Every flow is checked at start (kodosumid/catalog_check.py): broken ones are listed
    # unavailable, or with `strict` the node refuses to start; `reload` (development)
    # re-checks flows whose files change and replaces the executors that ran them.
    check_catalog: bool = True
    strict: bool = False
    reload: bool = False
