"""The warm pool of executor actors (`port.ExecutorPool` on Ray): shared executors that host
many executions, and warm spares for flows that want a process of their own.

Actors are named `kodosumi-exec-<node>-<s|p><hex>` in the node's Ray namespace. On an
external cluster they are detached, so they outlive a crashed node and a restarted one
re-attaches to them by name (`survivors`); on the embedded Ray they die with the node.

The pool heals and never leaks:
- every actor is tracked from the moment it is created, so `close` kills it even when it
  never answered;
- a keeper task tops the pool up to its configured size, retrying failed creations with
  capped backoff, and checks idle executors (nothing else would notice a dead spare);
- a launch waits (bounded) for an executor instead of failing on a stale start-up error;
- `problem` says why executors cannot be had, for health and `GetNodeInfo`;
- executors adopted after a node restart finish what they host and retire.

Creating executors, the keeper and stopping them are in `ray_pool_upkeep.py` (`PoolUpkeep`,
the base of `RayExecutorPool`); handing executors out, releasing and renewing them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kodosumi.errors import Unavailable
from kodosumid.executors.port import (
    ANYWHERE,
    PROCESS,
    SHARED,
    ExecutorGone,
    ExecutorHandle,
    Placement,
)
from kodosumid.executors.ray_handle import RayExecutor
from kodosumid.executors.ray_pool_upkeep import ACTOR_PREFIX, PoolUpkeep, own
from kodosumid.executors.ray_survivors import adopt_survivors

log = logging.getLogger(__name__)

__all__ = ["ACTOR_PREFIX", "PROCESS", "SHARED", "RayExecutor", "RayExecutorPool"]


class RayExecutorPool(PoolUpkeep):
    # -- handing executors out ----------------------------------------------------------------

    async def _started(self) -> None:
        if self.ready is not None:
            # A start-up that failed or was cancelled is not waited for again: the keeper
            # and the launch itself get executors now.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.ready)

    def _pick(self, isolation: str, placement: Placement) -> RayExecutor | None:
        if isolation == PROCESS:
            for spare in self.spares:
                if spare.placement.key == placement.key and not spare.dead:
                    self.spares.remove(spare)
                    return spare
            return None
        candidates = [
            e
            for e in self.shared
            if not e.dead
            and not e.winding_down
            and e.placement.key == placement.key
            and len(e.executions) < self.config.max_executions_per_executor
        ]
        return min(candidates, key=lambda e: len(e.executions)) if candidates else None

    def _keeper_makes(self, isolation: str, placement: Placement) -> bool:
        """Whether the keeper is the one to (re)create such an executor: the configured
        shared ones. A launch waits for those rather than racing to create more."""
        return (
            isolation == SHARED
            and placement.anywhere
            and len(self._standing_shared()) < self.config.shared_executors
            and self._keeper is not None
        )

    async def acquire(self, isolation: str, placement: Placement = ANYWHERE) -> RayExecutor:
        await self._started()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.acquire_timeout_seconds
        delay = self.config.retry_initial_seconds
        while True:
            if self._closed:
                raise Unavailable("the node is shutting down", reason="NODE_SHUTTING_DOWN")
            executor = self._pick(isolation, placement)
            if executor is not None:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(
                    f"no executor could be started within "
                    f"{self.config.acquire_timeout_seconds:g} s: {self.problem or 'timed out'}",
                    reason="NO_EXECUTOR",
                )
            if self._keeper_makes(isolation, placement):
                self._wake.set()
                self._added.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._added.wait(), min(remaining, 1.0))
                continue
            try:
                # One at a time per kind: concurrent launches share what the first creates.
                async with self._lock:
                    executor = self._pick(isolation, placement)
                    if executor is None:
                        # A launch waits for this one: no preload, its flow imports what
                        # it needs (a preload pays off only on spares made before launches,
                        # and CrewAI's would delay a placed plain-Python flow by seconds).
                        executor = await self._new(isolation, placement, preload=False)
                        if isolation == SHARED:
                            self._join(executor, self.shared)
                break
            except ExecutorGone:
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                delay = min(delay * 2, self.config.retry_max_seconds)
        if isolation == PROCESS:
            self.busy_isolated.append(executor)
            self._wake.set()  # the keeper refills the warm spares
        return executor

    def release(self, handle: ExecutorHandle, execution_id: str) -> None:
        """An execution ended; an isolated executor is not reused (its process may be dirty),
        and an adopted one retires once it hosts nothing."""
        executor = own(handle)
        executor.executions.discard(execution_id)
        if executor.executions:
            return
        if executor.isolation == PROCESS or executor.winding_down:
            self.forget(executor)

    def renew(self, flows: set[str]) -> int:
        """`--reload`: executors that ran any of `flows` hold their old code. Idle ones stop
        now, busy ones take no new executions and stop when theirs end; the keeper starts
        fresh ones. Warm spares never ran a flow. Answers how many were replaced."""
        replaced = 0
        for executor in list(self.shared):
            if executor.dead or executor.winding_down or not executor.flows & flows:
                continue
            replaced += 1
            if executor.executions:
                executor.retiring = True
            else:
                self.forget(executor)
        self._wake.set()
        self.changed.set()
        return replaced

    # -- after a restart ----------------------------------------------------------------------

    async def survivors(self) -> list[ExecutorHandle]:
        """After a node restart on an external cluster: adopt this node's executors that
        still host executions (they finish them, then retire); stop the idle ones."""
        return await adopt_survivors(self)

    # -- state ----------------------------------------------------------------------------------

    @property
    def executors(self) -> list[ExecutorHandle]:
        return [*self.shared, *self.busy_isolated]

    def counts(self) -> tuple[int, int]:
        """(alive executors, warm spares)."""
        return len(self.shared) + len(self.busy_isolated) + len(self.spares), len(self.spares)

    @property
    def unavailable(self) -> bool:
        """No executor can be had: none of the configured ones is up and creating fails."""
        return bool(self.problem) and not self._standing_shared() and not self.spares

    async def close(self) -> None:
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(BaseException):
                await self._keeper
        for executor in [*self._created.values(), *self.shared, *self.spares, *self.busy_isolated]:
            self.kill(executor)
        self.shared.clear()
        self.spares.clear()
        self.busy_isolated.clear()
