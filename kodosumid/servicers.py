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
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.rpc.guard import current_principal
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc
from kodosumid.catalog import Catalog
from kodosumid.convert import execution_message, flow_message, watch_responses
from kodosumid.executions import ExecutionManager

Context = grpc.aio.ServicerContext[Any, Any]


class FlowServicer(flow_pb2_grpc.FlowServiceServicer):
    def __init__(self, catalog: Catalog, executions: ExecutionManager, node_id: str) -> None:
        self.catalog = catalog
        self.executions = executions
        self.node_id = node_id

    async def ListFlows(
        self, request: flow_pb2.ListFlowsRequest, context: Context
    ) -> flow_pb2.ListFlowsResponse:
        flows = [flow_message(f, self.node_id) for f in self.catalog.list(request.tag)]
        return flow_pb2.ListFlowsResponse(flows=flows)

    async def GetFlow(
        self, request: flow_pb2.GetFlowRequest, context: Context
    ) -> flow_pb2.GetFlowResponse:
        return flow_pb2.GetFlowResponse(
            flow=flow_message(self.catalog.get(request.name), self.node_id)
        )

    async def LaunchExecution(
        self, request: flow_pb2.LaunchExecutionRequest, context: Context
    ) -> flow_pb2.LaunchExecutionResponse:
        record = await self.executions.launch(
            current_principal(), request.flow, struct_to_dict(request.inputs)
        )
        return flow_pb2.LaunchExecutionResponse(execution=execution_message(record))

    async def GetExecution(
        self, request: flow_pb2.GetExecutionRequest, context: Context
    ) -> flow_pb2.GetExecutionResponse:
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
        stream = self.executions.watch(current_principal(), request.execution_id, request.after_seq)
        async for events in stream:
            for response in watch_responses(events):
                yield response

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


class NodeServicer(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, info: Callable[[], node_pb2.NodeInfo]) -> None:
        self.info = info

    async def GetNodeInfo(
        self, request: node_pb2.GetNodeInfoRequest, context: Context
    ) -> node_pb2.GetNodeInfoResponse:
        return node_pb2.GetNodeInfoResponse(node=self.info())


def node_load(executions: ExecutionManager, watchers: int, started: float) -> node_pb2.NodeLoad:
    counts = executions.counts()
    alive, warm = executions.pool.counts()
    return node_pb2.NodeLoad(
        pending_executions=counts.get(event_pb2.EXECUTION_STATUS_PENDING, 0)
        + counts.get(event_pb2.EXECUTION_STATUS_STARTING, 0),
        running_executions=counts.get(event_pb2.EXECUTION_STATUS_RUNNING, 0),
        awaiting_input_executions=counts.get(event_pb2.EXECUTION_STATUS_AWAITING_INPUT, 0),
        executor_actors=alive,
        warm_executors=warm,
        watchers=watchers,
        uptime_seconds=time.monotonic() - started,
        load_average=os.getloadavg()[0],
    )


VERSION = __version__
