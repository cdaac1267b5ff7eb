"""kodosumid: the node daemon. It serves the flow catalog, launches executions on Ray, stores
their event streams and serves them to watchers. It is the Ray driver; the engine runs only
inside the executor actors."""
