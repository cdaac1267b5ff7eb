"""Executions on this node: the domain (no gRPC, no Ray).

- `manager`: launch, dispatch, drain, watch, cancel, input, retention, recovery.
- `relay`: executions run by a peer, their events relayed here.
- `fanout`: live batches to watchers.
- `lifecycle`: observers told of every stored status change.
- `crashpoints`: test hooks on the drain path.
"""
