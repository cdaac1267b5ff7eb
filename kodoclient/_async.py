"""The asyncio SDK: one `AsyncClient` per node, every unary call under a deadline, and a
watch that resumes by itself from the last seen `seq` when the stream breaks. The channel
and the deadline-bound unary call underneath are in kodoclient/_connection.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self

import grpc
from opentelemetry import trace

from kodoclient._connection import Connection
from kodoclient._spans import call_span, fail, stream_span
from kodoclient.config import ConnectConfig
from kodoclient.errors import KodoclientError
from kodoclient.events import TERMINAL_STATUSES, is_terminal, open_input_requests, parse_status
from kodoclient.files import FilesClient
from kodoclient.quotes import QuotesClient
from kodoclient.resume import ReconnectHook, ResumedHook, Resumer, StreamBroken, read_to_end
from kodoclient.usage import UsageClient
from kodosumi.jsonvalue import dict_to_struct, python_to_value
from kodosumi.telemetry.names import EXECUTION_ID
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2, usage_pb2_grpc

log = logging.getLogger(__name__)

StatusFilter = Iterable[event_pb2.ExecutionStatus.ValueType | str]


class AsyncClient(Connection):
    """An asyncio client of one node's FlowService and NodeService.

    Use it as an async context manager, or call `close()`. The channel opens lazily on the
    first call, inside the running loop, so a client may be built outside any loop.
    The channel, the stubs and `_unary` live in `Connection` (kodoclient/_connection.py).
    """

    @property
    def config(self) -> ConnectConfig:
        return self._config

    async def __aenter__(self) -> Self:
        self._flows()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        sync_channel, self._sync_channel = self._sync_channel, None
        if sync_channel is not None:
            sync_channel.close()
        channel, self._channel = self._channel, None
        self._flow_stub = self._node_stub = None
        if channel is not None:
            await channel.close()

    def files(self) -> FilesClient:
        """Upload, download, list and delete files (kodoclient/files.py)."""
        if self._channel is None:
            self._open()
        assert self._channel is not None
        return FilesClient(
            self._channel, self._config.call_timeout, upload_channel=self._upload_channel
        )

    def usage(self) -> UsageClient:
        """Metered usage: summaries and one execution's record (kodoclient/usage.py)."""
        if self._channel is None:
            self._open()
        assert self._channel is not None
        return UsageClient(usage_pb2_grpc.UsageServiceStub(self._channel), self._unary)

    def quotes(self) -> QuotesClient:
        """Quotes and receipts of this node (kodoclient/quotes.py)."""
        return QuotesClient(self)

    # -- flows -------------------------------------------------------------------------

    async def list_flows(
        self, tag: str = "", *, call_timeout: float | None = None
    ) -> list[flow_pb2.Flow]:
        response = await self._unary(
            "ListFlows", self._flows().ListFlows, flow_pb2.ListFlowsRequest(tag=tag), call_timeout
        )
        return list(response.flows)

    async def get_flow(self, name: str, *, call_timeout: float | None = None) -> flow_pb2.Flow:
        response = await self._unary(
            "GetFlow", self._flows().GetFlow, flow_pb2.GetFlowRequest(name=name), call_timeout
        )
        return response.flow

    # -- executions ----------------------------------------------------------------------

    async def launch(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, str] | None = None,
        quote_id: str = "",
        call_timeout: float | None = None,
    ) -> flow_pb2.Execution:
        """Start `flow` with `inputs` (and `files`: name -> file id, see `files()`; `quote_id`:
        a quote of this node, see `quotes()`); the node answers at once (status PENDING)."""
        request = flow_pb2.LaunchExecutionRequest(
            flow=flow, files=dict(files or {}), quote_id=quote_id
        )
        dict_to_struct(dict(inputs or {}), request.inputs)
        response = await self._unary(
            "LaunchExecution", self._flows().LaunchExecution, request, call_timeout
        )
        return response.execution

    async def get_execution(
        self, execution_id: str, *, call_timeout: float | None = None
    ) -> flow_pb2.Execution:
        request = flow_pb2.GetExecutionRequest(execution_id=execution_id)
        response = await self._unary(
            "GetExecution", self._flows().GetExecution, request, call_timeout
        )
        return response.execution

    async def list_executions_page(
        self,
        *,
        page_size: int = 50,
        page_token: str = "",
        statuses: StatusFilter = (),
        flow: str = "",
        call_timeout: float | None = None,
    ) -> tuple[list[flow_pb2.Execution], str]:
        """One page, newest first, and the token of the next page ("" after the last)."""
        request = flow_pb2.ListExecutionsRequest(
            page_size=page_size,
            page_token=page_token,
            statuses=[parse_status(s) if isinstance(s, str) else s for s in statuses],
            flow=flow,
        )
        response = await self._unary(
            "ListExecutions", self._flows().ListExecutions, request, call_timeout
        )
        return list(response.executions), response.next_page_token

    async def list_executions(
        self,
        *,
        statuses: StatusFilter = (),
        flow: str = "",
        limit: int | None = None,
        page_size: int = 100,
        call_timeout: float | None = None,
    ) -> AsyncGenerator[flow_pb2.Execution, None]:
        """Every matching execution, newest first, fetching pages as they are consumed."""
        wanted = list(statuses)
        token, seen = "", 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - seen))
            page, token = await self.list_executions_page(
                page_size=size,
                page_token=token,
                statuses=wanted,
                flow=flow,
                call_timeout=call_timeout,
            )
            for execution in page:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield execution
            if not token or (limit is not None and seen >= limit):
                return

    async def cancel(
        self, execution_id: str, reason: str = "", *, call_timeout: float | None = None
    ) -> flow_pb2.Execution:
        request = flow_pb2.CancelExecutionRequest(execution_id=execution_id, reason=reason)
        response = await self._unary(
            "CancelExecution", self._flows().CancelExecution, request, call_timeout
        )
        return response.execution

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, *, call_timeout: float | None = None
    ) -> None:
        """Answer the open input request `request_id` with a JSON-compatible `value`."""
        request = flow_pb2.ProvideInputRequest(execution_id=execution_id, request_id=request_id)
        python_to_value(value, request.value)
        await self._unary("ProvideInput", self._flows().ProvideInput, request, call_timeout)

    # -- events --------------------------------------------------------------------------

    async def watch(
        self,
        execution_id: str,
        after_seq: int = 0,
        *,
        on_reconnect: ReconnectHook | None = None,
        on_resumed: ResumedHook | None = None,
    ) -> AsyncGenerator[event_pb2.Event, None]:
        """Every event after `after_seq`, one by one, until the terminal status event.

        When the stream breaks (node restart, connection reset) the watch reconnects from
        the last `seq` it yielded, so the caller sees each event exactly once and in order.
        It retries forever unless the config's `reconnect` policy bounds it (`max_attempts`
        in a row, `give_up_after` seconds), then raises `KodoclientError` (UNAVAILABLE).
        `on_reconnect(attempt, delay_seconds, cause)` is called before each wait,
        `on_resumed(attempts)` when events flow again after reconnecting.
        """
        span = stream_span("WatchExecution", self._config.target, {EXECUTION_ID: execution_id})
        last = after_seq

        async def attempt() -> AsyncGenerator[event_pb2.Event, None]:
            nonlocal last
            request = flow_pb2.WatchExecutionRequest(execution_id=execution_id, after_seq=last)
            with trace.use_span(span):  # the call's client span (and the node's) join it
                call = self._flows().WatchExecution(request)
            responses = call.__aiter__()
            try:
                async for response in responses:
                    for event in response.events:
                        # A resumed stream must not repeat what the caller already has.
                        if event.seq <= last:
                            continue
                        last = event.seq
                        if is_terminal(event):
                            # The node ends the stream right after this event. Read to that
                            # end before handing it out (a caller may stop reading at it):
                            # the call, and the client span OpenTelemetry's interceptor ends
                            # only when its response iterator finishes, are over by then.
                            await read_to_end(responses)
                            yield event
                            return
                        yield event
            finally:
                call.cancel()
                await read_to_end(responses)
            # The stream ended cleanly without a terminal event: either the caller resumed
            # past the end of a finished execution, or the node let go early.
            if not await self._finished_at(execution_id, last):
                raise StreamBroken("the stream ended before the terminal event")

        resumer = Resumer(
            "WatchExecution",
            self._config.reconnect,
            self._rng,
            where=lambda: f"seq {last} of {execution_id}",
            on_reconnect=on_reconnect,
            on_resumed=on_resumed,
        )
        try:
            async with aclosing(resumer.run(attempt)) as events:
                async for event in events:
                    yield event
        except BaseException as e:
            fail(span, e)
            raise
        finally:
            span.end()

    async def _finished_at(self, execution_id: str, last: int) -> bool:
        try:
            execution = await self.get_execution(execution_id)
        except KodoclientError as e:
            if e.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return False  # the node went away with the stream: resume like any break
            raise
        return execution.status in TERMINAL_STATUSES and last >= execution.last_seq

    async def history(self, execution_id: str, after_seq: int = 0) -> list[event_pb2.Event]:
        """The events stored so far (after `after_seq`), without waiting for new ones."""
        execution = await self.get_execution(execution_id)
        if execution.last_seq <= after_seq:
            return []
        events: list[event_pb2.Event] = []
        async with aclosing(self.watch(execution_id, after_seq)) as stream:
            async for event in stream:
                events.append(event)
                if event.seq >= execution.last_seq:
                    break
        return events

    async def pending_inputs(self, execution_id: str) -> list[event_pb2.InputRequested]:
        """The input requests of the execution that nobody has answered yet, oldest first."""
        return open_input_requests(await self.history(execution_id))

    async def wait(self, execution_id: str) -> flow_pb2.Execution:
        """Follow the execution to its end (resuming as `watch` does); the final state."""
        execution = await self.get_execution(execution_id)
        if execution.status not in TERMINAL_STATUSES:
            async with aclosing(self.watch(execution_id, execution.last_seq)) as stream:
                async for _ in stream:
                    pass
            execution = await self.get_execution(execution_id)
        return execution

    # -- node ----------------------------------------------------------------------------

    async def node_info(self, *, call_timeout: float | None = None) -> node_pb2.NodeInfo:
        response = await self._unary(
            "GetNodeInfo", self._nodes().GetNodeInfo, node_pb2.GetNodeInfoRequest(), call_timeout
        )
        return response.node

    async def peers(self, *, call_timeout: float | None = None) -> list[node_pb2.Peer]:
        """The node's peer table (`ListPeers`): the other nodes it knows from the registry
        or the LAN, ordered by node id, with liveness from the node's own health checks."""
        response = await self._unary(
            "ListPeers", self._nodes().ListPeers, node_pb2.ListPeersRequest(), call_timeout
        )
        return list(response.peers)

    async def alerts(
        self,
        after_seq: int = 0,
        *,
        follow: bool = False,
        on_reconnect: ReconnectHook | None = None,
        on_resumed: ResumedHook | None = None,
    ) -> AsyncGenerator[event_pb2.Event, None]:
        """The node's alerts after `after_seq` (events of kind `alert`, oldest first); with
        `follow`, then each new one as it fires, resuming after breaks like `watch`.
        Operators and admins only (PERMISSION_DENIED for others)."""
        last = after_seq

        async def attempt() -> AsyncGenerator[event_pb2.Event, None]:
            nonlocal last
            request = node_pb2.WatchAlertsRequest(after_seq=last, follow=follow)
            with call_span("WatchAlerts", self._config.target):
                call = self._nodes().WatchAlerts(request)
            try:
                async for response in call:
                    for event in response.events:
                        if event.seq <= last:
                            continue
                        last = event.seq
                        yield event
            finally:
                call.cancel()
            if follow:
                raise StreamBroken("the node ended the alert stream")

        resumer = Resumer(
            "WatchAlerts",
            self._config.reconnect,
            self._rng,
            where=lambda: f"alert seq {last}",
            on_reconnect=on_reconnect,
            on_resumed=on_resumed,
            retry=follow,
        )
        async with aclosing(resumer.run(attempt)) as alerts:
            async for event in alerts:
                yield event
