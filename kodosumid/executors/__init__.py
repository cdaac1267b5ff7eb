"""Where flows run: executor actors on Ray.

- `ray_actor`: the executor actor (imports `engine` only inside the actor process).
- `ray_pool`: the warm pool of executor actors.
- `ray_runtime`: starting the embedded Ray or joining a cluster.
- `flow_caller`: `ctx.call_flow` from inside an executor, over gRPC to the node.
"""
