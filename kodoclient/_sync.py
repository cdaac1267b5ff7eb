"""The blocking SDK: the `AsyncClient` API driven from a private event loop in a thread.

grpc.aio channels belong to one event loop, so the sync client owns a loop of its own on a
daemon thread and hands it coroutines; callers never see asyncio, and a sync client works
inside programs that run their own loop elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from opentelemetry import context as otel_context

from kodoclient._async import AsyncClient, StatusFilter
from kodoclient.config import ConnectConfig
from kodoclient.files import SyncFilesClient
from kodoclient.quotes import SyncQuotesClient
from kodoclient.resume import ReconnectHook, ResumedHook
from kodoclient.usage import SyncUsageClient
from kodosumi.telemetry import in_context
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2

_T = TypeVar("_T")


class _Pump:
    """Steps an async generator from another thread and can cancel a step in flight."""

    def __init__(self, agen: AsyncGenerator[_T, None]) -> None:
        self._agen: AsyncGenerator[Any, None] = agen
        self._task: asyncio.Task[Any] | None = None

    async def next(self) -> tuple[bool, Any]:
        self._task = asyncio.current_task()
        try:
            return True, await self._agen.__anext__()
        except StopAsyncIteration:
            # Futures cannot carry StopAsyncIteration across threads cleanly: use a flag.
            return False, None
        finally:
            self._task = None

    async def close(self) -> None:
        task = self._task
        if task is not None:
            # An interrupted step is still unwinding; aclose() would find it running.
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._agen.aclose()


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="kodoclient-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if not self.alive:
            coro.close()
            raise RuntimeError("the client is closed")
        # The caller's trace context goes along: SDK spans join the caller's trace.
        future = asyncio.run_coroutine_threadsafe(
            in_context(coro, otel_context.get_current()), self.loop
        )
        try:
            return future.result()
        except BaseException:
            # Ctrl-C while waiting: do not leave the call running on the loop.
            future.cancel()
            raise

    def iterate(self, agen: AsyncGenerator[_T, None]) -> Iterator[_T]:
        pump = _Pump(agen)
        try:
            while True:
                more, item = self.run(pump.next())
                if not more:
                    return
                yield item
        finally:
            if self.alive:
                with contextlib.suppress(Exception, concurrent.futures.CancelledError):
                    self.run(pump.close())

    def stop(self) -> None:
        if self.alive:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()


class Client:
    """A blocking client of one node; the same API as `AsyncClient`.

    Iterating methods (`watch`, `list_executions`) return ordinary iterators; closing one
    early (`break`, `close()`) cancels the underlying stream.
    """

    def __init__(
        self, config: ConnectConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self._async = AsyncClient(config, rng=rng)
        self._loop = _LoopThread()

    @property
    def config(self) -> ConnectConfig:
        return self._async.config

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.alive:
            self._loop.run(self._async.close())
        self._loop.stop()

    def list_flows(
        self, tag: str = "", *, call_timeout: float | None = None
    ) -> list[flow_pb2.Flow]:
        return self._loop.run(self._async.list_flows(tag, call_timeout=call_timeout))

    def get_flow(self, name: str, *, call_timeout: float | None = None) -> flow_pb2.Flow:
        return self._loop.run(self._async.get_flow(name, call_timeout=call_timeout))

    def launch(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, str] | None = None,
        quote_id: str = "",
        call_timeout: float | None = None,
    ) -> flow_pb2.Execution:
        return self._loop.run(
            self._async.launch(
                flow, inputs, files=files, quote_id=quote_id, call_timeout=call_timeout
            )
        )

    def quotes(self) -> SyncQuotesClient:
        """Quotes and receipts of this node (kodoclient/quotes.py)."""
        return SyncQuotesClient(self._loop.run, self._async.quotes())

    def files(self) -> SyncFilesClient:
        """Upload, download, list and delete files (kodoclient/files.py)."""
        return SyncFilesClient(self._loop.run, self._async.files())

    def usage(self) -> SyncUsageClient:
        """Metered usage: summaries and one execution's record (kodoclient/usage.py)."""
        return SyncUsageClient(self._loop.run, self._loop.iterate, self._async.usage())

    def get_execution(
        self, execution_id: str, *, call_timeout: float | None = None
    ) -> flow_pb2.Execution:
        return self._loop.run(self._async.get_execution(execution_id, call_timeout=call_timeout))

    def list_executions_page(
        self,
        *,
        page_size: int = 50,
        page_token: str = "",
        statuses: StatusFilter = (),
        flow: str = "",
        call_timeout: float | None = None,
    ) -> tuple[list[flow_pb2.Execution], str]:
        return self._loop.run(
            self._async.list_executions_page(
                page_size=page_size,
                page_token=page_token,
                statuses=statuses,
                flow=flow,
                call_timeout=call_timeout,
            )
        )

    def list_executions(
        self,
        *,
        statuses: StatusFilter = (),
        flow: str = "",
        limit: int | None = None,
        page_size: int = 100,
        call_timeout: float | None = None,
    ) -> Iterator[flow_pb2.Execution]:
        return self._loop.iterate(
            self._async.list_executions(
                statuses=statuses,
                flow=flow,
                limit=limit,
                page_size=page_size,
                call_timeout=call_timeout,
            )
        )

    def cancel(
        self, execution_id: str, reason: str = "", *, call_timeout: float | None = None
    ) -> flow_pb2.Execution:
        return self._loop.run(self._async.cancel(execution_id, reason, call_timeout=call_timeout))

    def provide_input(
        self, execution_id: str, request_id: str, value: Any, *, call_timeout: float | None = None
    ) -> None:
        self._loop.run(
            self._async.provide_input(execution_id, request_id, value, call_timeout=call_timeout)
        )

    def watch(
        self,
        execution_id: str,
        after_seq: int = 0,
        *,
        on_reconnect: ReconnectHook | None = None,
        on_resumed: ResumedHook | None = None,
    ) -> Iterator[event_pb2.Event]:
        """As `AsyncClient.watch`; the hooks run on the client's loop thread."""
        return self._loop.iterate(
            self._async.watch(
                execution_id, after_seq, on_reconnect=on_reconnect, on_resumed=on_resumed
            )
        )

    def history(self, execution_id: str, after_seq: int = 0) -> list[event_pb2.Event]:
        return self._loop.run(self._async.history(execution_id, after_seq))

    def pending_inputs(self, execution_id: str) -> list[event_pb2.InputRequested]:
        return self._loop.run(self._async.pending_inputs(execution_id))

    def wait(self, execution_id: str) -> flow_pb2.Execution:
        return self._loop.run(self._async.wait(execution_id))

    def node_info(self, *, call_timeout: float | None = None) -> node_pb2.NodeInfo:
        return self._loop.run(self._async.node_info(call_timeout=call_timeout))

    def peers(self, *, call_timeout: float | None = None) -> list[node_pb2.Peer]:
        """As `AsyncClient.peers`."""
        return self._loop.run(self._async.peers(call_timeout=call_timeout))

    def alerts(
        self,
        after_seq: int = 0,
        *,
        follow: bool = False,
        on_reconnect: ReconnectHook | None = None,
        on_resumed: ResumedHook | None = None,
    ) -> Iterator[event_pb2.Event]:
        """As `AsyncClient.alerts`."""
        return self._loop.iterate(
            self._async.alerts(
                after_seq, follow=follow, on_reconnect=on_reconnect, on_resumed=on_resumed
            )
        )
