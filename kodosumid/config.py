"""The node's configuration: one TOML file, overridden by `KODOSUMI_*` variables and flags.

```toml
[node]
id = "node-a"                 # default: generated once and kept in the state directory
listen = "127.0.0.1:7470"
state_dir = "~/.local/share/kodosumi"
insecure = false              # plaintext; only with intent
insecure_allow_remote = false # plaintext on a non-loopback address (anyone there is admin)
advertise = []                # HOST[:PORT]s others dial (default: derived from listen,
                              # 0.0.0.0 -> this host's addresses); also --advertise

[tls]                         # omit for the development CA in <state_dir>/pki
ca_cert = "ca.pem"
cert = "node.pem"
key = "node.key"

[ray]
address = ""                  # empty: embedded local Ray; else e.g. "127.0.0.1:6379"
num_cpus = 2

[registry]                    # omit to run without a registry
address = "127.0.0.1:7460"    # also `--registry ADDRESS`
heartbeat_interval = 5.0      # what the node asks for; it keeps what the registry grants

[discovery]                   # zeroconf `_kodosumi._tcp` on the LAN
enabled = true                # also `--lan` / `--no-lan`
interfaces = []               # empty: the interface of `listen` (all for 0.0.0.0)

[peers]                       # failure detection: docs/operations.md has the bounds
forward = true                # launch flows this node lacks on a peer that has them
health_interval_seconds = 2.0 # every peer is checked this often ...
health_timeout_seconds = 2.0  # ... and gets this long to answer
keepalive_seconds = 2.0       # pings on peer links: a dead link breaks within
keepalive_timeout_seconds = 2.0  # keepalive + keepalive_timeout
connect_timeout_seconds = 2.0 # a connection attempt to a peer gives up after this
relay_grace_seconds = 30.0    # a relayed execution is PEER_LOST at once, FAILED after this

[auth]                        # roles, revocations, certificates (default: the enrollment registry)
address = "127.0.0.1:7460"

[telemetry]                   # off by default; see docs/observability.md
exporter = "otlp"             # otlp | console | none (or the OTEL_* variables)
endpoint = "127.0.0.1:4317"

[alerts]                      # rules and webhooks: kodosumid/observability/rules.py

[quotas]                      # per identity; 0: no limit (kodosumid/quotas.py)
concurrent_executions = 20
launches_per_minute = 120
open_streams = 64             # WatchExecution and WatchAlerts streams open at once
stored_bytes = 1073741824     # events stored for the identity's executions
max_input_bytes = 262144      # a launch's inputs; a flow may set its own
[quotas.roles.operator]       # also [quotas.groups.<group>]; the most generous match wins
concurrent_executions = 100

[a2a]                         # A2A 1.0 on the node's gRPC port (docs/a2a.md)
http_listen = ""              # e.g. "127.0.0.1:7471": /.well-known/agent-card.json (off: "")
max_part_bytes = 1048576      # larger message parts are refused

[files]                       # files in and out of runs (docs/files.md)
max_file_bytes = 2147483648   # larger uploads: RESOURCE_EXHAUSTED FILE_TOO_LARGE
stored_bytes_per_owner = 10737418240  # QUOTA_FILE_BYTES beyond; 0: no limit
ttl_seconds = 604800.0        # an upload no execution uses is purged after this

[pool]
shared_executors = 1          # actors that host many executions each
warm_executors = 1            # pre-started spares for flows that ask for a process of their own
max_executions_per_executor = 250

[[flows]]
name = "hello"
entrypoint = "flows.basic:hello"
input_schema = { type = "object", properties = { name = { type = "string" } } }
max_input_bytes = 65536       # default: the caller's quota
resources = { GPU = 1 }       # Ray resources its executors need (default: none)
labels = { gpu = "a100" }     # Ray node labels they need (`ray start --labels`)
node = ""                     # one Ray node (id or address) they must run on
```
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from kodosumi.config_loader import ConfigError, TomlFile, build, read_toml, table
from kodosumi.errors import InvalidArgument
from kodosumi.paths import default_state_dir
from kodosumi.telemetry import TelemetryConfig
from kodosumid.executors.placement import parse_placement
from kodosumid.executors.port import ANYWHERE, Placement
from kodosumid.files.model import FilesConfig
from kodosumid.observability.rules import AlertsConfig, alerts_config
from kodosumid.quotas import QuotasConfig, quotas_config

DEFAULT_LISTEN = "127.0.0.1:7470"
_C = TypeVar("_C")
ISOLATIONS = ("shared", "process")


@dataclass(frozen=True, slots=True)
class FlowEntry:
    name: str
    entrypoint: str
    description: str = ""
    tags: tuple[str, ...] = ()
    version: str = ""
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    timeout_seconds: float = 0.0
    # "shared": many executions per executor process; "process": one process of its own.
    isolation: str = "shared"
    # Attempts in all (1: no retry), and the pause before each new attempt.
    retry_attempts: int = 1
    retry_backoff_seconds: float = 1.0
    # Auth: user groups that may launch the flow (empty: everyone; operators and admins always).
    groups: tuple[str, ...] = ()
    # Largest inputs (serialized bytes) a launch may carry; 0: the caller's quota decides.
    max_input_bytes: int = 0
    # Where its executors run: Ray resources, node labels, one Ray node (empty: anywhere).
    placement: Placement = ANYWHERE


@dataclass(frozen=True, slots=True)
class TlsPaths:
    ca_cert: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class RayConfig:
    address: str = ""
    num_cpus: int = 2
    object_store_memory: int = 200 * 1024 * 1024
    namespace: str = "kodosumi"

    @property
    def embedded(self) -> bool:
        return not self.address


@dataclass(frozen=True, slots=True)
class PoolConfig:
    shared_executors: int = 1
    warm_executors: int = 1
    max_executions_per_executor: int = 250
    # Unacknowledged events an execution may hold before its flow waits (backpressure).
    buffer_capacity: int = 10_000
    drain_batch: int = 10_000
    # Modules executors import ahead of the first launch, so a crew's first launch does not
    # pay CrewAI's import (~2 s). `engine.crew.listener` also sets CrewAI's offline switches.
    preload_modules: tuple[str, ...] = ("engine.crew.listener",)
    # An executor whose process has not answered within this is given up and killed (e.g.
    # no Ray node can host its placement); its preload is not counted.
    start_timeout_seconds: float = 60.0
    # A launch waits at most this long for an executor while none can be started, then fails.
    acquire_timeout_seconds: float = 60.0
    # Re-creating lost executors: capped exponential backoff between attempts.
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    # How often idle executors (warm spares, shared ones hosting nothing) are checked.
    check_interval_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class RegistryClientConfig:
    """How the node keeps its registry entry alive (`[registry]`; the address is separate)."""

    # Asked of the registry (its grant counts): the lease runs out after about three missed
    # heartbeats, so a dead node is OFFLINE within 3 x 5 s + the registry's sweep.
    heartbeat_interval: float = 5.0
    # While the registry is unreachable: jittered exponential backoff from/to these delays
    # (the cap bounds how late a node registers again after the registry or link is back).
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    call_timeout_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """zeroconf LAN discovery (`[discovery]`). No interfaces: the one the node listens on."""

    enabled: bool = True
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PeersConfig:
    """Peer calls (`[peers]`): forwarding launches, health checks, relaying remote streams."""

    forward: bool = True
    # Liveness: every peer is health-checked this often; a check gets this long to answer.
    health_interval_seconds: float = 2.0
    health_timeout_seconds: float = 2.0
    # Peer links: keepalive pings on open connections, so that a silent dead link (a pulled
    # cable, a frozen host) breaks within keepalive + keepalive_timeout; a connection attempt
    # to a peer gives up after connect_timeout (and is retried at most that far apart).
    keepalive_seconds: float = 2.0
    keepalive_timeout_seconds: float = 2.0
    connect_timeout_seconds: float = 2.0
    # Launches, cancels and answers forwarded to a peer.
    call_timeout_seconds: float = 10.0
    # A relayed execution is PEER_LOST as soon as its peer does not answer, FAILED when the
    # peer stays unreachable this long.
    relay_grace_seconds: float = 30.0
    # mDNS never says goodbye for a crashed host: a peer known from the LAN that failed its
    # checks this long (or at once, once the registry lists it OFFLINE or LEFT) is forgotten
    # by the LAN side (peer table and zeroconf cache); it is found again when it announces.
    lan_forget_seconds: float = 12.0

    def check(self) -> None:
        for name in (
            "lan_forget_seconds",
            "health_interval_seconds",
            "health_timeout_seconds",
            "keepalive_seconds",
            "keepalive_timeout_seconds",
            "connect_timeout_seconds",
            "call_timeout_seconds",
        ):
            value = getattr(self, name)
            if not 0.1 <= value <= 3600:
                raise InvalidArgument.field(f"peers.{name}", "seconds from 0.1 to 3600")
        if self.keepalive_seconds < 1.0:
            # Nodes accept client pings at most once a second (kodosumi/rpc/server.py).
            raise InvalidArgument.field("peers.keepalive_seconds", "at least 1 second")
        if not 0 <= self.relay_grace_seconds <= 86_400:
            raise InvalidArgument.field("peers.relay_grace_seconds", "seconds from 0 to 86400")


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


@dataclass(frozen=True, slots=True)
class A2AConfig:
    """The A2A binding (`[a2a]`, docs/a2a.md): served on the node's gRPC port, always."""

    # The HTTP listener for A2A discovery (`/.well-known/agent-card.json`); empty: none.
    http_listen: str = ""
    max_part_bytes: int = 1024 * 1024
    cancel_wait_seconds: float = 10.0


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


def _flow(raw: dict[str, Any], index: int) -> FlowEntry:
    where = f"flows[{index}]"
    for key in ("name", "entrypoint"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidArgument.field(f"{where}.{key}", "required string")
    isolation = raw.get("isolation", "shared")
    if isolation not in ISOLATIONS:
        raise InvalidArgument.field(f"{where}.isolation", f"one of {', '.join(ISOLATIONS)}")
    schema = raw.get("input_schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise InvalidArgument.field(f"{where}.input_schema", "a JSON Schema object")
    retry = raw.get("retry", {})
    if not isinstance(retry, dict):
        raise InvalidArgument.field(f"{where}.retry", "a table: { attempts, backoff_seconds }")
    attempts = retry.get("attempts", 1)
    if not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise InvalidArgument.field(f"{where}.retry.attempts", "a whole number from 1 to 100")
    backoff = retry.get("backoff_seconds", 1.0)
    if not isinstance(backoff, int | float) or not 0 <= backoff <= 3600:
        raise InvalidArgument.field(f"{where}.retry.backoff_seconds", "seconds from 0 to 3600")
    max_input = raw.get("max_input_bytes", 0)
    if isinstance(max_input, bool) or not isinstance(max_input, int) or max_input < 0:
        raise InvalidArgument.field(f"{where}.max_input_bytes", "a whole number of bytes >= 0")
    return FlowEntry(
        name=raw["name"],
        entrypoint=raw["entrypoint"],
        description=str(raw.get("description", "")),
        tags=tuple(raw.get("tags", ())),
        version=str(raw.get("version", "")),
        input_schema=schema,
        timeout_seconds=float(raw.get("timeout_seconds", 0.0)),
        isolation=isolation,
        retry_attempts=attempts,
        retry_backoff_seconds=float(backoff),
        groups=tuple(str(g) for g in raw.get("groups", ())),
        max_input_bytes=max_input,
        placement=parse_placement(
            raw.get("resources"), raw.get("labels"), raw.get("node", ""), where=where
        ),
    )


def flows_from(raw_flows: list[dict[str, Any]]) -> tuple[FlowEntry, ...]:
    flows = tuple(_flow(raw, i) for i, raw in enumerate(raw_flows))
    names = [f.name for f in flows]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise InvalidArgument.field(
            "flows", f"duplicate flow names: {', '.join(sorted(duplicates))}"
        )
    return flows


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> NodeConfig:
    """Read the TOML file (if any), then apply `KODOSUMI_*` environment overrides.

    The file is read by the daemons' shared loader (`kodosumi.config_loader`): a syntax
    error or a bad key names the file and line; both surface as INVALID_ARGUMENT.
    """
    try:
        return _load(path, env)
    except ConfigError as e:
        raise InvalidArgument(str(e)) from None


def _section(cls: type[_C], file: TomlFile, name: str, raw: Any, base: Path) -> _C:
    """One table of the file as its typed dataclass (unknown keys and bad types named)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{file.where((), name)}: [{name}] must be a table")
    return build(cls, table(cls, raw, base=base, file=file, path=(name,)))


def _load(path: Path | None, env: dict[str, str] | None) -> NodeConfig:
    env = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    file: TomlFile | None = None
    if path is not None:
        file = read_toml(path)
        data = file.data
    node = data.get("node", {})
    base = path.parent if path is not None else Path.cwd()
    config = NodeConfig(
        node_id=str(node.get("id", "")),
        listen=str(node.get("listen", DEFAULT_LISTEN)),
        state_dir=_path(node["state_dir"], base) if "state_dir" in node else default_state_dir(),
        insecure=bool(node.get("insecure", False)),
        insecure_allow_remote=bool(node.get("insecure_allow_remote", False)),
        trust_domain=str(node.get("trust_domain", "")),
        shutdown_grace_seconds=float(node.get("shutdown_grace_seconds", 10.0)),
        cancel_grace_seconds=float(node.get("cancel_grace_seconds", 5.0)),
        admins=tuple(node.get("admins", ())),
        operators=tuple(node.get("operators", ())),
        store_synchronous=str(node.get("store_synchronous", "NORMAL")).upper(),
        retention_seconds=float(node.get("retention_seconds", 0.0)),
        python_path=tuple(str(_path(p, base)) for p in node.get("python_path", ())),
        advertise=tuple(node.get("advertise", ())),
    )
    if "tls" in data:
        tls = data["tls"]
        config = replace(
            config,
            tls=TlsPaths(
                _path(tls["ca_cert"], base), _path(tls["cert"], base), _path(tls["key"], base)
            ),
        )
    if file is not None:
        sections: dict[str, type[Any]] = {
            "ray": RayConfig,
            "pool": PoolConfig,
            "discovery": DiscoveryConfig,
            "peers": PeersConfig,
            "auth": AuthClientConfig,
            "a2a": A2AConfig,
            "files": FilesConfig,
        }
        for name, cls in sections.items():
            if name in data:
                config = replace(config, **{name: _section(cls, file, name, data[name], base)})
        if "registry" in data:
            registry = data["registry"]
            address = ""
            if isinstance(registry, dict):
                registry = dict(registry)
                address = str(registry.pop("address", ""))
            config = replace(
                config,
                registry_address=address,
                registry=_section(RegistryClientConfig, file, "registry", registry, base),
            )
        config.peers.check()
    if "telemetry" in data:
        try:
            config = replace(config, telemetry=TelemetryConfig.from_mapping(data["telemetry"]))
        except ValueError as e:
            raise InvalidArgument.field("telemetry", str(e)) from None
    if "alerts" in data:
        config = replace(config, alerts=alerts_config(data["alerts"]))
    if "quotas" in data:
        config = replace(config, quotas=quotas_config(data["quotas"]))
    if "flows" in data:
        flows = [dict(raw) for raw in data["flows"]]
        for raw in flows:
            entry = str(raw.get("entrypoint", ""))
            if entry.endswith((".yaml", ".yml")):
                raw["entrypoint"] = str(_path(entry, base))
        config = replace(config, flows=flows_from(flows))
    return _apply_env(config, env)


def _apply_env(config: NodeConfig, env: dict[str, str]) -> NodeConfig:
    if "KODOSUMI_NODE_ID" in env:
        config = replace(config, node_id=env["KODOSUMI_NODE_ID"])
    if "KODOSUMI_LISTEN" in env:
        config = replace(config, listen=env["KODOSUMI_LISTEN"])
    if env.get("KODOSUMI_INSECURE", "").lower() in {"1", "true", "yes"}:
        config = replace(config, insecure=True)
    if env.get("KODOSUMI_INSECURE_ALLOW_REMOTE", "").lower() in {"1", "true", "yes"}:
        config = replace(config, insecure_allow_remote=True)
    if "KODOSUMI_RAY_ADDRESS" in env:
        config = replace(config, ray=replace(config.ray, address=env["KODOSUMI_RAY_ADDRESS"]))
    if env.get("KODOSUMI_ADVERTISE", "").strip():
        advertise = tuple(a.strip() for a in env["KODOSUMI_ADVERTISE"].split(",") if a.strip())
        config = replace(config, advertise=advertise)
    if "KODOSUMI_REGISTRY" in env:
        config = replace(config, registry_address=env["KODOSUMI_REGISTRY"])
    return config


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def ensure_node_id(config: NodeConfig) -> NodeConfig:
    """A node keeps its id across restarts: generated once and stored in the state directory."""
    if config.node_id:
        return config
    id_file = config.state_dir / "node_id"
    if id_file.is_file():
        node_id = id_file.read_text().strip()
    else:
        node_id = f"node-{uuid.uuid4().hex[:8]}"
        config.state_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(node_id + "\n")
    return replace(config, node_id=node_id)
