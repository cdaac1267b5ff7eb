"""The node's A2A 1.0 binding (`lf.a2a.v1.A2AService`, from the a2a-sdk): tasks are executions.

- `mapping`: executions and events ↔ A2A tasks, messages, parts, updates (pure, no gRPC);
  it gathers the names of its rooms, which are pure too:
  - `states`: our execution statuses ↔ A2A task states.
  - `parts`: the parts, agent messages and result artifact the node sends.
  - `fold`: `TaskFold`, an execution's events as a task and its stream updates.
  - `messages`: a flow's inputs and input answers read from callers' messages.
- `errors`: A2A's errors (`ErrorInfo` domain `a2a-protocol.org`) and the translation of ours.
- `tasks`: the task operations over the node's execution facade (send, follow, list, cancel).
- `subscribe`: `SubscribeToTask`, its memory bounded per stream (artifacts replayed in pages).
- `cards`: the node's and each flow's agent card, signed with the node's key.
- `servicer`: the thin gRPC servicer on the node's port (same mTLS, guard and quotas).
- `http`: the optional HTTP listener serving `/.well-known/agent-card.json`.
"""
