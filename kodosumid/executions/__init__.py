"""Executions on this node: the domain (no gRPC, no Ray).

- `service`: `ExecutionService`, the facade the servicers call; it wires the rooms below.
- `launch`: check a launch, store the execution and its first events, hand it on.
- `dispatch`: hand an execution to an executor and start its attempt there.
- `drain`: the drain loop per executor, store-then-publish, retry, executor death.
- `drain_caps`: the caps a drained run is held to (stored bytes, a quote's cost ceiling).
- `budget`: the ports contracts reach executions by (a quote redeemed at launch, the meter).
- `watch`: replay stored events, then follow live ones.
- `control`: cancel an execution, answer its request for input.
- `relay`: executions run by a peer, their events relayed here.
- `access`: who may see and act on an execution.
- `retention`: deleting finished executions, on request and by age.
- `metering`: the usage record stored with each execution, its roll-up and summaries.
- `recovery`: taking up open executions after a node restart.
- `live`: the live executions and their background tasks, shared by the rooms.
- `events`: the status events the node writes itself.
- `fanout`: live batches to watchers.
- `lifecycle`: observers told of every stored status change.
- `crashpoints`: test hooks on the drain path.
"""
