"""The executors of the Ray pool and their upkeep: creating warm executor actors (and
waiting until they answer), the keeper task that tops the pool up to its configured size and
checks idle executors, and stopping executors. `RayExecutorPool` (ray_pool.py) hands them
out on top of this.

Actors are named `kodosumi-exec-<node>-<s|p><hex>` in the node's Ray namespace. Every actor
is tracked from the moment it is created, so `close` kills it even when it never answered;
failed creations are retried with capped backoff; `problem` says why executors cannot be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import ray

from kodosumid.config import PoolConfig
from kodosumid.executors.credentials import CallerCredentials
from kodosumid.executors.port import (
    ANYWHERE,
    PROCESS,
    SHARED,
    ExecutorGone,
    ExecutorHandle,
    Placement,
)
from kodosumid.executors.ray_actor import CREDENTIALS_KEY, RemoteExecutor
from kodosumid.executors.ray_handle import RayExecutor
from kodosumid.executors.ray_placement import actor_options
from kodosumid.executors.ray_runtime import EXECUTOR_ENV

log = logging.getLogger(__name__)

ACTOR_PREFIX = "kodosumi-exec"
# An idle executor that does not answer a check within this is left alone (a busy machine),
# only one that is gone is dropped.
CHECK_TIMEOUT_SECONDS = 5.0


def own(handle: ExecutorHandle) -> RayExecutor:
    if not isinstance(handle, RayExecutor):
        raise TypeError(f"not an executor of this pool: {handle!r}")
    return handle


class PoolUpkeep:
    """The pool's state, the creation of its executors and the keeper that keeps it full."""

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
        self._lock = asyncio.Lock()
        self._keeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # the keeper has work (an executor lost or taken)
        self._added = asyncio.Event()  # an executor joined (launches waiting for one)
        self._closed = False
        # Why executors cannot be had right now ("" while the last creation worked).
        self.problem = ""
        # Set whenever `problem` or availability changes (the node updates its health).
        self.changed = asyncio.Event()
        # Set by the node to the start-up task; launches wait for it before picking executors.
        self.ready: asyncio.Future[None] | None = None
        # How executors dial the node for `ctx.call_flow` (`CallerSettings.to_dict()` of
        # kodosumid/executors/caller_settings.py); set by the node once it is bound, before `start`.
        self.caller: dict[str, str] | None = None
        # What executors dial the node with, sent as data with every start (set by the node).
        self.credentials: CallerCredentials | None = None
        # Flows' code reaches executors through Ray's runtime environment (py_modules), not
        # through the node's paths: starts then carry no `python_path`.
        self.ships_code = False

    @property
    def prefix(self) -> str:
        return f"{ACTOR_PREFIX}-{self.node_id}-"

    # -- creating executors ---------------------------------------------------------------

    def _create(
        self, isolation: str, placement: Placement = ANYWHERE, *, preload: bool = True
    ) -> RayExecutor:
        name = f"{self.prefix}{isolation[0]}{uuid.uuid4().hex[:8]}"
        options: dict[str, Any] = {
            "name": name,
            "max_concurrency": 100_000,
            "max_restarts": 0,
            **actor_options(placement),
        }
        if self.detached:
            options["lifetime"] = "detached"
        actor = RemoteExecutor.options(**options).remote(
            self.config.buffer_capacity,
            self.env,
            list(self.config.preload_modules) if preload else [],
            self.caller,
        )
        executor = RayExecutor(name, actor, isolation, placement, prepare=self._prepare)
        self._created[name] = executor  # before anything can fail: `close` must know it
        return executor

    def _prepare(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.credentials is not None:
            spec[CREDENTIALS_KEY] = self.credentials.for_flow(str(spec.get("flow", "")))
        if self.ships_code:
            spec["python_path"] = []
        return spec

    async def _ready(self, executor: RayExecutor) -> RayExecutor:
        """Wait until the executor answers and has imported `preload_modules`: a warm
        executor pays neither process start-up nor imports at launch. A failure kills it."""
        try:
            # Bounded: an actor no Ray node can host waits forever. The preload is not (the
            # actor bounds it): on a busy machine importing CrewAI alone can take a minute.
            async with asyncio.timeout(self.config.start_timeout_seconds):
                await executor.locate()
            if self.config.preload_modules:
                await executor.preload([])
        except TimeoutError:
            self.kill(executor)
            raise ExecutorGone(
                f"executor {executor.name} did not start within "
                f"{self.config.start_timeout_seconds:g} s (no Ray node can host it?)"
            ) from None
        except BaseException:
            self.kill(executor)
            raise
        return executor

    async def _new(
        self, isolation: str, placement: Placement = ANYWHERE, *, preload: bool = True
    ) -> RayExecutor:
        try:
            executor = await self._ready(self._create(isolation, placement, preload=preload))
        except ExecutorGone as e:
            if placement.anywhere:  # a placement nothing matches is the launch's problem
                self._set_problem(str(e))
            raise
        if placement.anywhere:
            self._set_problem("")
        return executor

    def _set_problem(self, problem: str) -> None:
        if problem != self.problem:
            if problem:
                log.warning("executor pool: %s", problem)
            else:
                log.info("executor pool: executors start again")
            self.problem = problem
            self.changed.set()

    def _join(self, executor: RayExecutor, group: list[RayExecutor]) -> None:
        if self._closed:
            self.kill(executor)
            return
        group.append(executor)
        self._added.set()
        self.changed.set()

    # -- the keeper: top up and check ---------------------------------------------------------

    def _standing_shared(self) -> list[RayExecutor]:
        """The configured shared executors (not adopted ones, not per-placement ones)."""
        return [
            e for e in self.shared if not e.dead and not e.winding_down and e.placement.anywhere
        ]

    async def start(self) -> None:
        """Create the shared executors and the warm spares and wait for them; then keep
        the pool at that size. Never fails: what could not be created is retried."""
        await self._fill()
        if self._keeper is None and not self._closed:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def _fill(self) -> bool:
        """Create the executors missing from the configured size; whether all worked."""
        missing_shared = self.config.shared_executors - len(self._standing_shared())
        missing_spares = self.config.warm_executors - len(self.spares)
        kinds = [SHARED] * max(0, missing_shared) + [PROCESS] * max(0, missing_spares)
        if not kinds:
            return True
        results = await asyncio.gather(*(self._new(k) for k in kinds), return_exceptions=True)
        ok = True
        for result in results:
            if isinstance(result, RayExecutor):
                self._join(result, self.shared if result.isolation == SHARED else self.spares)
            elif isinstance(result, ExecutorGone):
                ok = False
            elif isinstance(result, BaseException):
                ok = False
                log.error("creating an executor failed", exc_info=result)
        return ok

    async def _keep(self) -> None:
        delay = self.config.retry_initial_seconds
        while not self._closed:
            try:
                healthy = await self._fill()
                await self._check_idle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("executor pool keeper")
                healthy = False
            if healthy:
                delay, pause = self.config.retry_initial_seconds, self.config.check_interval_seconds
            else:
                pause, delay = delay, min(delay * 2, self.config.retry_max_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()

    async def _check_idle(self) -> None:
        """Drop idle executors that are gone: no drain loop watches them."""
        idle = [*self.spares, *(e for e in self.shared if not e.executions)]

        async def check(executor: RayExecutor) -> None:
            try:
                await asyncio.wait_for(executor.ready(), CHECK_TIMEOUT_SECONDS)
            except ExecutorGone as e:
                if not executor.executions and not executor.dead:
                    log.warning("%s while idle", e)
                    self.forget(executor)
            except TimeoutError:
                log.info("idle executor %s is slow to answer", executor.name)

        await asyncio.gather(*(check(e) for e in idle))

    # -- stopping executors ---------------------------------------------------------------

    def forget(self, handle: ExecutorHandle) -> None:
        """Stop handing the executor out and stop its process (if it still runs)."""
        executor = own(handle)
        for group in (self.shared, self.spares, self.busy_isolated):
            if executor in group:
                group.remove(executor)
        self.kill(executor)
        self._wake.set()
        self.changed.set()

    def kill(self, handle: ExecutorHandle) -> None:
        executor = own(handle)
        executor.dead = True
        self._created.pop(executor.name, None)
        try:
            ray.kill(executor.actor, no_restart=True)
        except Exception:  # already gone
            log.debug("executor %s already gone", executor.name)
