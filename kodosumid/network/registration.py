"""The node's entry in the registry: register with the full state, renew the lease by
heartbeat, register again whenever the registry lost the node or the node's state changed,
and leave on a clean stop.

The rules are those of `docs/registry.md` ("For nodes: the client side"):

- `RegisterNode` with the full state (node id, endpoints, flows, version, capabilities,
  load); keep the heartbeat interval the registry grants.
- `Heartbeat` with the load every interval, jittered a little earlier.
- `NOT_FOUND` (`NODE_NOT_REGISTERED`): register again at once.
- Registry unreachable: keep serving; retry `RegisterNode` with capped, jittered
  exponential backoff — registering again re-asserts the full state after a data loss.
- `refresh()` (catalog, endpoints or version changed): register again now.
- `stop()`: `DeregisterNode`.

No gRPC here: the registry sits behind `RegistryWriter`, whose failures are catalog errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from kodosumi.errors import InvalidArgument, KodosumiError, NotFound
from kodosumi.v1 import node_pb2
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.config import RegistryClientConfig
from kodosumid.network.backoff import Backoff, TimeSource, jittered

log = logging.getLogger(__name__)

DEREGISTER_TIMEOUT_SECONDS = 2.0


class RegistryWriter(Protocol):
    """The registry's write side, as this node uses it."""

    async def register(self, info: node_pb2.NodeInfo, heartbeat_interval: float | None) -> float:
        """Register with the full state; returns the heartbeat interval granted."""
        ...

    async def heartbeat(self, node_id: str, load: node_pb2.NodeLoad, time_limit: float) -> float:
        """Renew the lease; returns the heartbeat interval to keep. A writer that takes
        service statistics also accepts them as the keyword `stats`."""
        ...

    async def deregister(self, node_id: str, reason: str, time_limit: float) -> None: ...


class Registration:
    def __init__(
        self,
        registry: RegistryWriter,
        announce: Callable[[], node_pb2.NodeInfo],
        settings: RegistryClientConfig,
        time: TimeSource | None = None,
        stats: Callable[[], Awaitable[rpb.ServiceStats | None]] | None = None,
    ) -> None:
        self.registry = registry
        self.announce = announce
        # The node's per-flow service statistics, sent with each heartbeat (service_stats.py).
        self.stats = stats
        self.settings = settings
        self.time = time or TimeSource()
        self.backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
        # What the node holds now; read by tests and by whoever reports the node's state.
        self.registered = False
        self.interval = settings.heartbeat_interval
        self.registrations = 0
        self.heartbeats = 0
        self.last_error = ""
        self._asked_interval: float | None = settings.heartbeat_interval
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="registration")

    def refresh(self) -> None:
        """The node's state changed: register again with it as soon as possible."""
        self._refresh.set()

    async def stop(self, reason: str = "shutdown") -> None:
        """Stop renewing and leave the registry (best effort: the node is stopping anyway)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self.registered:
            return
        self.registered = False
        node_id = self.announce().node_id
        try:
            await self.registry.deregister(node_id, reason, DEREGISTER_TIMEOUT_SECONDS)
        except KodosumiError as e:
            log.warning("could not deregister %s: %s", node_id, e.message)

    async def run(self) -> None:
        attempt = 0
        must_register = True
        while True:
            if must_register or self._refresh.is_set():
                self._refresh.clear()
                must_register = True
                if not await self._register():
                    await self._pause(self.backoff.delay(attempt, self.time.random))
                    attempt += 1
                    continue
                attempt, must_register = 0, False
            await self._pause(jittered(self.interval, self.time.random))
            if self._refresh.is_set():
                continue
            try:
                info = self.announce()
                timeout = min(self.settings.call_timeout_seconds, self.interval)
                self.interval = await self._heartbeat(info, timeout)
                self.heartbeats += 1
            except NotFound as e:
                # The registry forgot the node (it deregistered, or the registry lost its data).
                log.info("registry does not know this node (%s); registering again", e.reason)
                self.registered, must_register = False, True
            except KodosumiError as e:
                self._failed("heartbeat", e)
                self.registered, must_register = False, True
                await self._pause(self.backoff.delay(attempt, self.time.random))
                attempt += 1

    async def _register(self) -> bool:
        info = self.announce()
        try:
            self.interval = await self.registry.register(info, self._asked_interval)
        except InvalidArgument as e:
            if self._asked_interval is not None and any(
                v.field == "heartbeat_interval" for v in e.violations
            ):
                # Outside the registry's bounds: take the registry's default instead.
                log.warning("registry refused heartbeat interval %s s", self._asked_interval)
                self._asked_interval = None
            self._failed("registration", e)
            return False
        except KodosumiError as e:
            self._failed("registration", e)
            return False
        if not self.registered or self.last_error:
            log.info(
                "registered %s with the registry (heartbeat every %.1f s)",
                info.node_id,
                self.interval,
            )
        self.registered, self.last_error = True, ""
        self.registrations += 1
        return True

    async def _heartbeat(self, info: node_pb2.NodeInfo, time_limit: float) -> float:
        stats = await self._stats()
        if stats is None:
            return await self.registry.heartbeat(info.node_id, info.load, time_limit)
        try:
            return await self.registry.heartbeat(  # type: ignore[call-arg]
                info.node_id, info.load, time_limit, stats=stats
            )
        except InvalidArgument as e:
            # The registry refused the figures (another window, a flow it does not list yet):
            # the lease matters more; renew it without them and try them again next time.
            log.warning("registry refused the service statistics: %s", e.message)
            return await self.registry.heartbeat(info.node_id, info.load, time_limit)

    async def _stats(self) -> rpb.ServiceStats | None:
        """The statistics to send; None when there are none, or the store failed to give
        them (the lease matters more than the figures: the heartbeat goes without them)."""
        if self.stats is None:
            return None
        try:
            return await self.stats()
        except Exception:
            log.exception("could not read the service statistics; heartbeat without them")
            return None

    def _failed(self, what: str, error: KodosumiError) -> None:
        message = f"{what} failed: {error.message}"
        if message != self.last_error:  # log each new problem once, not every retry
            log.warning("registry %s; the node keeps serving and retries", message)
        self.last_error = message

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less when a refresh is asked for."""
        if self._refresh.is_set():
            return
        sleeper = asyncio.ensure_future(self.time.sleep(seconds))
        woken = asyncio.ensure_future(self._refresh.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()
