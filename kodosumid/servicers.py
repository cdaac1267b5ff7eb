"""Thin gRPC servicers of the node: decode, call the domain, encode.

Authentication and authorization happen before these run (the guard interceptor); the
caller arrives as `current_principal()`.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from kodosumi import __version__
from kodosumi.authz import Principals, default_principal
from kodosumi.errors import NotFound
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.rpc.guard import current_principal
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc
from kodosumid.catalog import Catalog
from kodosumid.convert import execution_message, flow_message, peer_message
from kodosumid.executions.service import ExecutionService
from kodosumid.executors.placement import parse_placement
from kodosumid.executors.port import ANYWHERE, Placement
from kodosumid.network.peer_client import forwarded_call, forwarded_for
from kodosumid.network.peers import PeerTable
from kodosumid.observability.run_trace import name_execution
from kodosumid.quotas import Quotas, QuotasConfig, launch_within

Context = grpc.aio.ServicerContext[Any, Any]


class FlowServicer(flow_pb2_grpc.FlowServiceServicer):
    def __init__(
        self,
        catalog: Catalog,
        executions: ExecutionService,
        node_id: str,
        peers: PeerTable | None = None,
        quotas: Quotas | None = None,
        principals: Principals = default_principal,
    ) -> None:
        self.catalog = catalog
        self.executions = executions
        self.node_id = node_id
        self.quotas = quotas or Quotas(QuotasConfig())
        # Roles and groups of an identity that is not the caller (whose quotas a launch uses).
        self.principals = principals
        # Flows of peers that launches here are forwarded to (their `node_id` names the peer).
        self.peers = peers

    async def ListFlows(
        self, request: flow_pb2.ListFlowsRequest, context: Context
    ) -> flow_pb2.ListFlowsResponse:
        flows = [flow_message(f, self.node_id) for f in self.catalog.list(request.tag)]
        if self.peers is not None:
            local = (f.name for f in self.catalog.list())
            flows += self.peers.remote_flows(request.tag, exclude=local)
        return flow_pb2.ListFlowsResponse(flows=flows)

    async def GetFlow(
        self, request: flow_pb2.GetFlowRequest, context: Context
    ) -> flow_pb2.GetFlowResponse:
        try:
            return flow_pb2.GetFlowResponse(
                flow=flow_message(self.catalog.get(request.name), self.node_id)
            )
        except NotFound:
            remote = self.peers.remote_flow(request.name) if self.peers is not None else None
            if remote is None:
                raise
            return flow_pb2.GetFlowResponse(flow=remote)

    async def LaunchExecution(
        self, request: flow_pb2.LaunchExecutionRequest, context: Context
    ) -> flow_pb2.LaunchExecutionResponse:
        principal = current_principal()
        try:
            flow_limit = self.catalog.get(request.flow).max_input_bytes
        except NotFound:
            flow_limit = 0  # a peer's flow (the peer holds it to its own limit), or none
        # A flow launching a child (ctx.call_flow) spends its parent's owner's quotas.
        charged = await self.executions.charged_to(principal, request.parent_execution_id)
        payer = principal if charged == principal.id else await self.principals(charged)
        record = await launch_within(
            self.quotas,
            payer,
            inputs_bytes=request.inputs.ByteSize(),
            flow_limit=flow_limit,
            launch=lambda: self.executions.launch(
                principal,
                request.flow,
                struct_to_dict(request.inputs),
                forwarded=forwarded_call(context.invocation_metadata()),
                forwarded_for=forwarded_for(context.invocation_metadata()),
                parent_execution_id=request.parent_execution_id,
                placement=placement_of(request),
                files=dict(request.files),
                quote_id=request.quote_id,
            ),
        )
        return flow_pb2.LaunchExecutionResponse(execution=execution_message(record))

    async def GetExecution(
        self, request: flow_pb2.GetExecutionRequest, context: Context
    ) -> flow_pb2.GetExecutionResponse:
        name_execution(request.execution_id)
        record = await self.executions.get(current_principal(), request.execution_id)
        return flow_pb2.GetExecutionResponse(execution=execution_message(record))

    async def ListExecutions(
        self, request: flow_pb2.ListExecutionsRequest, context: Context
    ) -> flow_pb2.ListExecutionsResponse:
        page = await self.executions.list_executions(
            current_principal(),
            statuses=list(request.statuses),
            flow=request.flow,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return flow_pb2.ListExecutionsResponse(
            executions=[execution_message(r) for r in page.executions],
            next_page_token=page.next_token,
        )

    async def WatchExecution(
        self, request: flow_pb2.WatchExecutionRequest, context: Context
    ) -> AsyncIterator[flow_pb2.WatchExecutionResponse]:
        name_execution(request.execution_id)
        principal = current_principal()
        with self.quotas.open_stream(principal):
            # Pre-built response bytes, the same for every watcher (the guard passes bytes on).
            stream = self.executions.watch_responses(
                principal, request.execution_id, request.after_seq
            )
            async for response in stream:
                yield response  # type: ignore[misc]

    async def CancelExecution(
        self, request: flow_pb2.CancelExecutionRequest, context: Context
    ) -> flow_pb2.CancelExecutionResponse:
        record = await self.executions.cancel(
            current_principal(), request.execution_id, request.reason
        )
        return flow_pb2.CancelExecutionResponse(execution=execution_message(record))

    async def ProvideInput(
        self, request: flow_pb2.ProvideInputRequest, context: Context
    ) -> flow_pb2.ProvideInputResponse:
        await self.executions.provide_input(
            current_principal(),
            request.execution_id,
            request.request_id,
            value_to_python(request.value),
        )
        return flow_pb2.ProvideInputResponse()

    async def DeleteExecution(
        self, request: flow_pb2.DeleteExecutionRequest, context: Context
    ) -> flow_pb2.DeleteExecutionResponse:
        name_execution(request.execution_id)
        await self.executions.delete(current_principal(), request.execution_id)
        return flow_pb2.DeleteExecutionResponse()


# The node's operator stream: `WatchAlertsResponse` bytes after a seq, then (follow) live ones.
AlertStream = Callable[[int, bool], AsyncIterator[bytes]]


async def _no_alerts(after_seq: int, follow: bool) -> AsyncIterator[bytes]:
    yield b""


class NodeServicer(node_pb2_grpc.NodeServiceServicer):
    def __init__(
        self,
        info: Callable[[], node_pb2.NodeInfo],
        alerts: AlertStream = _no_alerts,
        peers: PeerTable | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.info = info
        self.alerts = alerts
        self.quotas = quotas or Quotas(QuotasConfig())
        # The node's peer table (None: a node without a network, which has no peers).
        self.peers = peers

    async def GetNodeInfo(
        self, request: node_pb2.GetNodeInfoRequest, context: Context
    ) -> node_pb2.GetNodeInfoResponse:
        return node_pb2.GetNodeInfoResponse(node=self.info())

    async def ListPeers(
        self, request: node_pb2.ListPeersRequest, context: Context
    ) -> node_pb2.ListPeersResponse:
        entries = self.peers.entries() if self.peers is not None else []
        return node_pb2.ListPeersResponse(peers=[peer_message(p) for p in entries])

    async def WatchAlerts(
        self, request: node_pb2.WatchAlertsRequest, context: Context
    ) -> AsyncIterator[node_pb2.WatchAlertsResponse]:
        # uint64 on the wire, int64 in SQLite: beyond that there is nothing anyway.
        after_seq = min(request.after_seq, 2**63 - 1)
        with self.quotas.open_stream(current_principal()):
            async for response in self.alerts(after_seq, request.follow):
                yield response  # type: ignore[misc]  # pre-built bytes, passed through


def placement_of(request: flow_pb2.LaunchExecutionRequest) -> Placement:
    """The launch's placement, checked (INVALID_ARGUMENT naming the field)."""
    if not request.HasField("placement"):
        return ANYWHERE
    p = request.placement
    return parse_placement(dict(p.resources), dict(p.labels), p.node, where="placement")


def node_load(executions: ExecutionService, watchers: int, started: float) -> node_pb2.NodeLoad:
    counts = executions.counts()
    alive, warm = executions.pool.counts()
    return node_pb2.NodeLoad(
        pending_executions=counts.get(event_pb2.EXECUTION_STATUS_PENDING, 0)
        + counts.get(event_pb2.EXECUTION_STATUS_STARTING, 0),
        # A relayed execution whose peer is lost for now still runs there, as far as we know.
        running_executions=counts.get(event_pb2.EXECUTION_STATUS_RUNNING, 0)
        + counts.get(event_pb2.EXECUTION_STATUS_PEER_LOST, 0),
        awaiting_input_executions=counts.get(event_pb2.EXECUTION_STATUS_AWAITING_INPUT, 0),
        executor_actors=alive,
        warm_executors=warm,
        watchers=watchers,
        uptime_seconds=time.monotonic() - started,
        load_average=os.getloadavg()[0],
    )


VERSION = __version__
