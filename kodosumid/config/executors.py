"""Where flows run: `[ray]` (the cluster the node drives) and `[pool]` (its warm executors)."""

from __future__ import annotations

from dataclasses import dataclass


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
