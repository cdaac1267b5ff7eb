"""Executor actors: shared ones that host many executions, and warm spares for isolated flows.

Actors are named `kodosumi-exec-<node>-<n>` in the node's Ray namespace. On an external
cluster they are detached, so they outlive a crashed node and a restarted one re-attaches
to them by name; on the embedded Ray they die with the node.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ray

from kodosumid.config import PoolConfig
from kodosumid.executors.ray_actor import RemoteExecutor
from kodosumid.executors.ray_runtime import EXECUTOR_ENV

log = logging.getLogger(__name__)

SHARED = "shared"
PROCESS = "process"
ACTOR_PREFIX = "kodosumi-exec"


@dataclass(eq=False)
class Executor:
    name: str
    actor: Any
    isolation: str
    executions: set[str] = field(default_factory=set)
    dead: bool = False


class ExecutorPool:
    def __init__(
        self,
        config: PoolConfig,
        node_id: str,
        *,
        detached: bool,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.detached = detached
        # The executors' environment: offline switches, plus the node's telemetry settings.
        self.env = {**EXECUTOR_ENV, **(env or {})}
        self.shared: list[Executor] = []
        self.spares: list[Executor] = []
        self.busy_isolated: list[Executor] = []
        self._refill: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        # Set by the node to the start-up task; launches wait for it before picking executors.
        self.ready: asyncio.Future[None] | None = None
        # How executors dial the node for `ctx.call_flow` (`CallerSettings.to_dict()` of
        # kodosumid/executors/ray_actor.py); set by the node once it is bound, before `start`.
        self.caller: dict[str, str] | None = None

    @property
    def prefix(self) -> str:
        return f"{ACTOR_PREFIX}-{self.node_id}-"

    def _create(self, isolation: str) -> Executor:
        name = f"{self.prefix}{isolation[0]}{uuid.uuid4().hex[:8]}"
        options: dict[str, Any] = {
            "name": name,
            "max_concurrency": 100_000,
            "num_cpus": 0,
            "max_restarts": 0,
        }
        if self.detached:
            options["lifetime"] = "detached"
        actor = RemoteExecutor.options(**options).remote(
            self.config.buffer_capacity, self.env, list(self.config.preload_modules), self.caller
        )
        return Executor(name, actor, isolation)

    async def _ready(self, executor: Executor) -> Executor:
        """Wait until the executor answers and has imported `preload_modules`: a warm
        executor pays neither process start-up nor imports at launch."""
        await executor.actor.ready.remote()
        if self.config.preload_modules:
            await executor.actor.preload.remote([])
        return executor

    async def start(self) -> None:
        """Create the shared executors and the warm spares, and wait until they answer."""
        shared = [self._create(SHARED) for _ in range(self.config.shared_executors)]
        spares = [self._create(PROCESS) for _ in range(self.config.warm_executors)]
        await asyncio.gather(*(self._ready(e) for e in shared + spares))
        self.shared += shared
        self.spares += spares

    def adopt(self, name: str, actor: Any, isolation: str) -> Executor:
        """Take over an executor that survived a node restart (external cluster)."""
        executor = Executor(name, actor, isolation)
        (self.shared if isolation == SHARED else self.busy_isolated).append(executor)
        return executor

    async def acquire(self, isolation: str) -> Executor:
        if self.ready is not None:
            await asyncio.shield(self.ready)
        async with self._lock:
            if isolation == PROCESS:
                executor = self.spares.pop(0) if self.spares else None
                self._schedule_refill()
                if executor is None:
                    executor = await self._ready(self._create(PROCESS))
                self.busy_isolated.append(executor)
                return executor
            live = [e for e in self.shared if not e.dead]
            candidates = [
                e for e in live if len(e.executions) < self.config.max_executions_per_executor
            ]
            if candidates:
                return min(candidates, key=lambda e: len(e.executions))
            executor = await self._ready(self._create(SHARED))
            self.shared.append(executor)
            return executor

    def _schedule_refill(self) -> None:
        missing = self.config.warm_executors - len(self.spares) - len(self._refill)
        for _ in range(max(0, missing)):
            task = asyncio.get_running_loop().create_task(self._add_spare())
            self._refill.add(task)
            task.add_done_callback(self._refill.discard)

    async def _add_spare(self) -> None:
        try:
            self.spares.append(await self._ready(self._create(PROCESS)))
        except Exception:
            log.exception("could not start a warm executor")

    def release(self, executor: Executor, execution_id: str) -> None:
        """An execution ended; an isolated executor is not reused (its process may be dirty)."""
        executor.executions.discard(execution_id)
        if executor.isolation == PROCESS and not executor.executions:
            if executor in self.busy_isolated:
                self.busy_isolated.remove(executor)
            self.kill(executor)

    def forget(self, executor: Executor) -> None:
        executor.dead = True
        for group in (self.shared, self.spares, self.busy_isolated):
            if executor in group:
                group.remove(executor)

    def kill(self, executor: Executor) -> None:
        executor.dead = True
        try:
            ray.kill(executor.actor, no_restart=True)
        except Exception:  # already gone
            log.debug("executor %s already gone", executor.name)

    @property
    def executors(self) -> list[Executor]:
        return [*self.shared, *self.busy_isolated]

    def counts(self) -> tuple[int, int]:
        """(alive executors, warm spares)."""
        return len(self.shared) + len(self.busy_isolated) + len(self.spares), len(self.spares)

    async def close(self) -> None:
        for task in list(self._refill):
            task.cancel()
        for executor in [*self.shared, *self.spares, *self.busy_isolated]:
            self.kill(executor)
        self.shared.clear()
        self.spares.clear()
        self.busy_isolated.clear()

    def existing_actor_names(self) -> list[str]:
        """Named executors of this node alive in the cluster (for re-attaching after a restart)."""
        names = ray.util.list_named_actors(all_namespaces=False)
        return [n for n in names if isinstance(n, str) and n.startswith(self.prefix)]
