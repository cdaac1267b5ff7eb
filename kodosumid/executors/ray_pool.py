"""The warm pool of executor actors (`port.ExecutorPool` on Ray): shared executors that host
many executions, and warm spares for flows that want a process of their own.

Actors are named `kodosumi-exec-<node>-<s|p><hex>` in the node's Ray namespace. On an
external cluster they are detached, so they outlive a crashed node and a restarted one
re-attaches to them by name (`survivors`); on the embedded Ray they die with the node.
Every actor is tracked from the moment it is created, so `close` kills it even when it
never answered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import ray
from ray.exceptions import RayError

from kodosumid.config import PoolConfig
from kodosumid.executors.port import (
    ANYWHERE,
    PROCESS,
    SHARED,
    ExecutorGone,
    ExecutorHandle,
    Placement,
)
from kodosumid.executors.ray_actor import RemoteExecutor
from kodosumid.executors.ray_handle import RayExecutor
from kodosumid.executors.ray_runtime import EXECUTOR_ENV

log = logging.getLogger(__name__)

__all__ = ["ACTOR_PREFIX", "PROCESS", "SHARED", "RayExecutor", "RayExecutorPool"]

ACTOR_PREFIX = "kodosumi-exec"


def _own(handle: ExecutorHandle) -> RayExecutor:
    if not isinstance(handle, RayExecutor):
        raise TypeError(f"not an executor of this pool: {handle!r}")
    return handle


class RayExecutorPool:
    def __init__(
        self,
        config: PoolConfig,
        node_id: str,
        *,
        detached: bool,
        namespace: str = "kodosumi",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self.detached = detached
        self.namespace = namespace
        # The executors' environment: offline switches, plus the node's telemetry settings.
        self.env = {**EXECUTOR_ENV, **(env or {})}
        self.shared: list[RayExecutor] = []
        self.spares: list[RayExecutor] = []
        self.busy_isolated: list[RayExecutor] = []
        # Every actor this pool created and has not killed, ready or not (see `close`).
        self._created: dict[str, RayExecutor] = {}
        self._refill: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        # Set by the node to the start-up task; launches wait for it before picking executors.
        self.ready: asyncio.Future[None] | None = None
        # How executors dial the node for `ctx.call_flow` (`CallerSettings.to_dict()` of
        # kodosumid/executors/caller_settings.py); set by the node once it is bound, before `start`.
        self.caller: dict[str, str] | None = None

    @property
    def prefix(self) -> str:
        return f"{ACTOR_PREFIX}-{self.node_id}-"

    def _create(self, isolation: str, placement: Placement = ANYWHERE) -> RayExecutor:
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
        executor = RayExecutor(name, actor, isolation, placement)
        self._created[name] = executor
        return executor

    async def _ready(self, executor: RayExecutor) -> RayExecutor:
        """Wait until the executor answers and has imported `preload_modules`: a warm
        executor pays neither process start-up nor imports at launch. A failure kills it."""
        try:
            await executor.ready()
            if self.config.preload_modules:
                await executor.preload([])
        except BaseException:
            self.kill(executor)
            raise
        return executor

    async def _new(self, isolation: str, placement: Placement = ANYWHERE) -> RayExecutor:
        return await self._ready(self._create(isolation, placement))

    async def start(self) -> None:
        """Create the shared executors and the warm spares, and wait until they answer."""
        shared = [self._create(SHARED) for _ in range(self.config.shared_executors)]
        spares = [self._create(PROCESS) for _ in range(self.config.warm_executors)]
        await asyncio.gather(*(self._ready(e) for e in shared + spares))
        self.shared += shared
        self.spares += spares

    async def acquire(self, isolation: str, placement: Placement = ANYWHERE) -> RayExecutor:
        if self.ready is not None:
            await asyncio.shield(self.ready)
        async with self._lock:
            if isolation == PROCESS:
                executor = self.spares.pop(0) if self.spares else None
                self._schedule_refill()
                if executor is None:
                    executor = await self._new(PROCESS)
                self.busy_isolated.append(executor)
                return executor
            candidates = [
                e
                for e in self.shared
                if not e.dead
                and not e.adopted
                and len(e.executions) < self.config.max_executions_per_executor
            ]
            if candidates:
                return min(candidates, key=lambda e: len(e.executions))
            executor = await self._new(SHARED)
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
            self.spares.append(await self._new(PROCESS))
        except Exception:
            log.exception("could not start a warm executor")

    def release(self, handle: ExecutorHandle, execution_id: str) -> None:
        """An execution ended; an isolated executor is not reused (its process may be dirty),
        and an adopted one retires once it hosts nothing."""
        executor = _own(handle)
        executor.executions.discard(execution_id)
        if executor.executions:
            return
        if executor.isolation == PROCESS or executor.adopted:
            self.forget(executor)
            self.kill(executor)

    def forget(self, handle: ExecutorHandle) -> None:
        executor = _own(handle)
        executor.dead = True
        for group in (self.shared, self.spares, self.busy_isolated):
            if executor in group:
                group.remove(executor)

    def kill(self, handle: ExecutorHandle) -> None:
        executor = _own(handle)
        executor.dead = True
        self._created.pop(executor.name, None)
        try:
            ray.kill(executor.actor, no_restart=True)
        except Exception:  # already gone
            log.debug("executor %s already gone", executor.name)

    async def survivors(self) -> list[ExecutorHandle]:
        """After a node restart on an external cluster: adopt this node's executors that
        still host executions (they finish them, then retire); stop the idle ones."""
        if not self.detached:
            return []
        adopted: list[ExecutorHandle] = []
        for name in self._existing_actor_names():
            try:
                actor = ray.get_actor(name, namespace=self.namespace)
            except (RayError, ValueError):
                continue
            isolation = SHARED if name[len(self.prefix)] == SHARED[0] else PROCESS
            executor = RayExecutor(name, actor, isolation, adopted=True)
            try:
                hosted = await executor.hosted()
            except ExecutorGone:
                continue
            if not hosted:
                # An idle executor of the previous run (a warm spare): nothing to resume.
                self.kill(executor)
                continue
            executor.executions.update(hosted)
            self._created[name] = executor
            (self.shared if isolation == SHARED else self.busy_isolated).append(executor)
            adopted.append(executor)
        return adopted

    def _existing_actor_names(self) -> list[str]:
        """Named executors of this node alive in the cluster."""
        names = ray.util.list_named_actors(all_namespaces=False)
        return [n for n in names if isinstance(n, str) and n.startswith(self.prefix)]

    @property
    def executors(self) -> list[ExecutorHandle]:
        return [*self.shared, *self.busy_isolated]

    def counts(self) -> tuple[int, int]:
        """(alive executors, warm spares)."""
        return len(self.shared) + len(self.busy_isolated) + len(self.spares), len(self.spares)

    async def close(self) -> None:
        for task in list(self._refill):
            task.cancel()
        for executor in [*self._created.values(), *self.shared, *self.spares, *self.busy_isolated]:
            self.kill(executor)
        self.shared.clear()
        self.spares.clear()
        self.busy_isolated.clear()
