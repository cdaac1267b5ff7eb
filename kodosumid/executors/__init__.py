"""Where flows run: the executor port and its implementations.

- `port`: what the executions domain needs of an executor (`ExecutorHandle`, `ExecutorPool`,
  `ExecutorGone`, `Placement`); the domain imports nothing else from here.
- `ray_pool`, `ray_handle`: the port on Ray (the node's), a warm pool of executor actors;
  `ray_survivors`: the pool adopting its detached executors after a node restart.
- `ray_actor`: the executor actor (imports `engine` only inside the actor process).
- `ray_runtime`: starting the embedded Ray or joining a cluster.
- `inprocess`: the port in this process, for tests and embedding (never imported by the node).
- `caller_settings`, `flow_caller`: `ctx.call_flow` from inside an executor, over gRPC to the
  node.
"""
