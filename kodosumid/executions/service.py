"""`ExecutionService`: the one object the node's servicers call for executions.

It builds the rooms of `kodosumid/executions/` over one shared `LiveTable` and forwards
each request to the room that holds it; the logic lives there. Domain only: it takes plain
objects (a `Principal`, dicts) and raises catalog errors; the servicer around it is the
only part that knows gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kodosumi.authz import Principal
from kodosumi.clock import Clock, SystemClock
from kodosumi.errors import InvalidArgument, KodosumiError
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import NodeConfig
from kodosumid.event_store import EventStore, ExecutionRecord, Page
from kodosumid.executions.access import Access
from kodosumid.executions.budget import BudgetPort, QuotePort
from kodosumid.executions.control import Control
from kodosumid.executions.dispatch import Dispatcher
from kodosumid.executions.drain import Drainer
from kodosumid.executions.fanout import WatchHub
from kodosumid.executions.launch import Launcher
from kodosumid.executions.launch_files import LaunchFiles
from kodosumid.executions.lifecycle import ExecutionObserver, Observers
from kodosumid.executions.live import NODE_ITSELF, LiveTable
from kodosumid.executions.metering import Metering, UsageRecord
from kodosumid.executions.recovery import recover
from kodosumid.executions.relay import PeerExecutions, Relayer, RelaySettings
from kodosumid.executions.retention import Retention
from kodosumid.executions.watch import Watches, events_of
from kodosumid.executors.port import ANYWHERE, ExecutorPool, Placement

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
# A ListExecutions page ends early, with a token, before its executions exceed this (inputs
# can be large): well below the 4 MiB clients accept.
LIST_PAGE_BYTES = 1024 * 1024


class ExecutionService:
    def __init__(
        self,
        config: NodeConfig,
        catalog: Catalog,
        store: EventStore,
        hub: WatchHub,
        pool: ExecutorPool,
        peers: PeerExecutions | None = None,
        observer: ExecutionObserver | None = None,
        identity: str = "",
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        # Every wall-clock read of the domain (event and execution times, retention).
        self.clock: Clock = clock or SystemClock()
        self.catalog = catalog
        self.store = store
        self.hub = hub
        self.watches = Watches(store, hub)
        self.pool = pool
        # Metrics and alert rules (kodosumid/executions/lifecycle.py): told of everything stored.
        self.observer: ExecutionObserver = observer or Observers()
        self.live = LiveTable()
        self.access = Access(store, config.node_id, identity)
        self.drainer = Drainer(
            self.live,
            store,
            hub,
            pool,
            self.observer,
            batch_size=config.pool.drain_batch,
            clock=self.clock,
            max_bytes=config.peers.max_execution_bytes,
            node_id=config.node_id,
        )
        self.dispatcher = Dispatcher(config, self.live, store, pool, self.drainer)
        self.drainer.dispatch = self.dispatcher.dispatch
        self.relayer = (
            Relayer(
                peers,
                self.live,
                self.drainer,
                store,
                self.observer,
                node_id=config.node_id,
                settings=RelaySettings(
                    grace_seconds=config.peers.relay_grace_seconds,
                    max_bytes=config.peers.max_execution_bytes,
                ),
                clock=self.clock,
            )
            if peers is not None and config.peers.forward
            else None
        )
        self.launcher = Launcher(
            node_id=config.node_id,
            catalog=catalog,
            store=store,
            hub=hub,
            live=self.live,
            access=self.access,
            dispatcher=self.dispatcher,
            relayer=self.relayer,
            observer=self.observer,
            clock=self.clock,
        )
        self.control = Control(self.live, self.access, self.dispatcher, self.relayer)
        self.retention = Retention(store, self.access, self.live, self.clock)
        self.metering = Metering(store, self.access)

    # -- queries ------------------------------------------------------------------------------

    def counts(self) -> dict[int, int]:
        """Live executions per status."""
        return self.live.counts()

    async def get(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        return await self.access.visible(principal, execution_id)

    async def list_executions(
        self,
        principal: Principal,
        *,
        statuses: list[int],
        flow: str,
        page_size: int,
        page_token: str,
    ) -> Page:
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        for status in statuses:
            if status not in event_pb2.ExecutionStatus.values():
                raise InvalidArgument.field("statuses", f"unknown status {status}")
        return await self.store.list_executions(
            owner=None if principal.privileged else principal.id,
            statuses=statuses,
            flow=flow,
            page_size=min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
            page_token=page_token,
            max_bytes=LIST_PAGE_BYTES,
        )

    async def usage_of(self, principal: Principal, execution_id: str) -> UsageRecord:
        """An execution's metered usage, its children's rolled up (executions/metering.py)."""
        return await self.metering.usage_of(principal, execution_id)

    # -- requests -----------------------------------------------------------------------------

    async def launch(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        forwarded: bool = False,
        forwarded_for: str = "",
        parent_execution_id: str = "",
        placement: Placement = ANYWHERE,
        files: dict[str, str] | None = None,
        quote_id: str = "",
    ) -> ExecutionRecord:
        return await self.launcher.launch(
            principal,
            flow_name,
            inputs,
            forwarded=forwarded,
            forwarded_for=forwarded_for,
            parent_execution_id=parent_execution_id,
            placement=placement,
            files=files,
            quote_id=quote_id,
        )

    def attach_market(self, quotes: QuotePort, budget: BudgetPort) -> None:
        """The node's contracts: launches redeem quotes, drains meter quoted runs."""
        self.launcher.quotes = quotes
        self.drainer.budget = budget

    def attach_files(self, files: LaunchFiles) -> None:
        """The node's file store: launches name input files, dispatches hand them on."""
        self.launcher.files = files
        self.dispatcher.files = files

    async def charged_to(self, principal: Principal, parent_execution_id: str) -> str:
        """The identity whose quotas a launch counts against (kodosumid/executions/access.py)."""
        return await self.access.charged_to(principal, parent_execution_id)

    async def watch_responses(
        self, principal: Principal, execution_id: str, after_seq: int
    ) -> AsyncIterator[bytes]:
        """`WatchExecutionResponse` bytes: stored events after `after_seq`, then live ones,
        until the terminal status event (kodosumid/executions/watch.py)."""
        await self.access.visible(principal, execution_id)
        async with contextlib.aclosing(
            self.watches.responses(execution_id, after_seq)  # type: ignore[type-var]
        ) as stream:
            async for response in stream:
                yield response

    async def watch(
        self, principal: Principal, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]:
        """`watch_responses`, each as the list of its serialized events."""
        await self.access.visible(principal, execution_id)
        async with contextlib.aclosing(
            events_of(self.watches.responses(execution_id, after_seq))  # type: ignore[type-var]
        ) as stream:
            async for events in stream:
                yield events

    async def cancel(self, principal: Principal, execution_id: str, reason: str) -> ExecutionRecord:
        return await self.control.cancel(principal, execution_id, reason)

    async def provide_input(
        self, principal: Principal, execution_id: str, request_id: str, value: Any
    ) -> None:
        await self.control.provide_input(principal, execution_id, request_id, value)

    async def delete(self, principal: Principal, execution_id: str) -> None:
        await self.retention.delete(principal, execution_id)

    async def expire(self, older_than_seconds: float) -> int:
        """Delete finished executions that ended more than `older_than_seconds` ago."""
        return await self.retention.expire(older_than_seconds)

    async def keep_for(self, retention_seconds: float) -> None:
        await self.retention.keep_for(retention_seconds)

    # -- lifecycle ----------------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: re-attach to executions whose executor survived, close the rest."""
        await recover(
            config=self.config,
            catalog=self.catalog,
            store=self.store,
            pool=self.pool,
            live_table=self.live,
            drainer=self.drainer,
            dispatcher=self.dispatcher,
            relayer=self.relayer,
        )

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop launching, let running executions finish within the grace period, cancel the
        rest, and record an explicit terminal status for anything still open."""
        self.live.closing = True
        await self._wait_all(grace_seconds)
        for live in self.live.values():
            with contextlib.suppress(KodosumiError):
                await self.cancel(NODE_ITSELF, live.execution_id, "the node is shutting down")
        await self._wait_all(self.config.cancel_grace_seconds + 1.0)
        await self.drainer.stop()
        self.live.cancel_tasks()
        for live in self.live.values():
            await self.drainer.end_by_node(
                live, event_pb2.EXECUTION_STATUS_CANCELLED, "the node shut down before it ended"
            )

    async def _wait_all(self, seconds: float) -> None:
        waits = [live.done.wait() for live in self.live.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), seconds)
