"""The node configurations of `make demo-network` (tools/demo_network.py): the flows each
node offers and its TOML, with short network intervals so the demo moves quickly."""

from __future__ import annotations

HELLO = """
[[flows]]
name = "hello"
entrypoint = "flows.basic:hello"
description = "Greets someone: prints a line, logs and reports progress."
tags = ["example", "fast"]
input_schema = { type = "object", properties = { name = { type = "string", default = "world" } } }
"""
COUNTDOWN = """
[[flows]]                         # node B only: node A forwards launches of it to B
name = "countdown"
entrypoint = "flows.basic:countdown"
description = "Counts down: one progress event per step."
tags = ["example", "generator"]
[flows.input_schema]
type = "object"
[flows.input_schema.properties]
steps = { type = "integer", minimum = 1, maximum = 50, default = 5 }
pause = { type = "number", minimum = 0, maximum = 5, default = 0.05 }
"""


def node_toml(node_id: str) -> str:
    """A node's configuration: its certificate from the demo CA, short network intervals."""
    return f"""# {node_id} of the network demo (tools/demo_network.py)
[node]
id = "{node_id}"
listen = "127.0.0.1:0"
state_dir = "{node_id}"
shutdown_grace_seconds = 5.0

[tls]                             # issued by the demo CA, which the registry uses too
ca_cert = "ca/ca.pem"
cert = "{node_id}/tls/node.pem"
key = "{node_id}/tls/node.key"

[registry]
heartbeat_interval = 2.0
retry_initial_seconds = 0.2
retry_max_seconds = 2.0
stats_refresh_seconds = 1.0       # service figures with each heartbeat: badges come quickly

[peers]
health_interval_seconds = 1.0

[ray]
num_cpus = 1
object_store_memory = 104857600

[pool]
shared_executors = 1
warm_executors = 0
"""
