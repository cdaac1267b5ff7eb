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
max_execution_bytes = 1073741824  # events any execution may store here; FAILED beyond

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
file_bytes = 10737418240      # the identity's files in the file store (QUOTA_FILE_BYTES)
max_file_bytes = 0            # its largest file (0: only [files] max_file_bytes holds)
[quotas.roles.operator]       # also [quotas.groups.<group>]; the most generous match wins
concurrent_executions = 100

[a2a]                         # A2A 1.0 on the node's gRPC port (docs/a2a.md)
http_listen = ""              # e.g. "127.0.0.1:7471": /.well-known/agent-card.json (off: "")
max_part_bytes = 1048576      # larger message parts are refused

[files]                       # files in and out of runs (docs/files.md)
max_file_bytes = 2147483648   # no larger file on this node: RESOURCE_EXHAUSTED FILE_TOO_LARGE
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

The package holds one module per concern: `node` (`NodeConfig`, `[node]`, `[tls]`), `flows`
(`[[flows]]`), `executors` (`[ray]`, `[pool]`), `network` (`[registry]`, `[discovery]`,
`[peers]`), `auth` (`[auth]`), `a2a` (`[a2a]`) and `loader` (file, environment, node id).
`[telemetry]`, `[alerts]`, `[quotas]` and `[files]` are typed where they are used
(`kodosumi.telemetry`, `kodosumid.observability.rules`, `kodosumid.quotas`,
`kodosumid.files.model`).
"""

from __future__ import annotations

from kodosumid.config.a2a import A2AConfig
from kodosumid.config.auth import AuthClientConfig
from kodosumid.config.executors import PoolConfig, RayConfig
from kodosumid.config.flows import ISOLATIONS, FlowEntry, flows_from
from kodosumid.config.loader import ensure_node_id, load_config
from kodosumid.config.network import DiscoveryConfig, PeersConfig, RegistryClientConfig
from kodosumid.config.node import DEFAULT_LISTEN, NodeConfig, TlsPaths

__all__ = [
    "DEFAULT_LISTEN",
    "ISOLATIONS",
    "A2AConfig",
    "AuthClientConfig",
    "DiscoveryConfig",
    "FlowEntry",
    "NodeConfig",
    "PeersConfig",
    "PoolConfig",
    "RayConfig",
    "RegistryClientConfig",
    "TlsPaths",
    "ensure_node_id",
    "flows_from",
    "load_config",
]
