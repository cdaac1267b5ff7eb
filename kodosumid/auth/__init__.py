"""Who the node is and who may do what on it.

- `identity`: the node's certificate and key (dev CA, `--join` enrollment).
- `flow_identity`: certificates for flows (`/flow/<node>/<flow>`).
- `policy`: the node's authorization table, failing closed.
- `roles`: roles and groups of callers, per-flow allow-lists.
- `client`, `sync`, `link`: the auth provider's client, its state follower, and their wiring.
"""
