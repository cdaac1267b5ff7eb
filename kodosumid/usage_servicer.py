"""The node's `UsageService` (proto/kodosumi/v1/usage.proto): decode, call the metering
domain (kodosumid/executions/metering.py), encode. Who sees whose usage is the domain's rule."""

from __future__ import annotations

from typing import Any

import grpc

from kodosumi.rpc.guard import current_principal
from kodosumi.v1 import usage_pb2, usage_pb2_grpc
from kodosumid.executions.metering import Metering
from kodosumid.usage_codec import record_message, row_message

Context = grpc.aio.ServicerContext[Any, Any]


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, metering: Metering) -> None:
        self.metering = metering

    async def ListUsage(
        self, request: usage_pb2.ListUsageRequest, context: Context
    ) -> usage_pb2.ListUsageResponse:
        page = await self.metering.summarize(
            current_principal(),
            user=request.user,
            group=request.group,
            flow=request.flow,
            node=request.node,
            since_ns=request.since_unix_nano,
            until_ns=request.until_unix_nano,
            group_by=request.group_by,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return usage_pb2.ListUsageResponse(
            rows=[row_message(r) for r in page.rows], next_page_token=page.next_token
        )

    async def GetExecutionUsage(
        self, request: usage_pb2.GetExecutionUsageRequest, context: Context
    ) -> usage_pb2.GetExecutionUsageResponse:
        record = await self.metering.usage_of(current_principal(), request.execution_id)
        return record_message(record)
