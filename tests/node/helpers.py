"""Helpers for node tests: launch, collect a watch stream, wait with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc

TERMINAL = {
    event_pb2.EXECUTION_STATUS_SUCCEEDED,
    event_pb2.EXECUTION_STATUS_FAILED,
    event_pb2.EXECUTION_STATUS_CANCELLED,
    event_pb2.EXECUTION_STATUS_TIMED_OUT,
}


async def launch(
    flows: flow_pb2_grpc.FlowServiceStub, flow: str, inputs: dict[str, Any] | None = None
) -> str:
    response = await flows.LaunchExecution(
        flow_pb2.LaunchExecutionRequest(flow=flow, inputs=dict_to_struct(inputs or {})),
        timeout=30,
    )
    return response.execution.execution_id


async def collect(
    flows: flow_pb2_grpc.FlowServiceStub,
    execution_id: str,
    after_seq: int = 0,
    *,
    limit: int | None = None,
    timeout: float = 60,
) -> list[event_pb2.Event]:
    """Events of a watch until the stream ends (or `limit` events were received)."""
    received: list[event_pb2.Event] = []
    call = flows.WatchExecution(
        flow_pb2.WatchExecutionRequest(execution_id=execution_id, after_seq=after_seq),
        timeout=timeout,
    )
    async for response in call:
        received.extend(response.events)
        if limit is not None and len(received) >= limit:
            call.cancel()
            break
    return received


def statuses(events: list[event_pb2.Event]) -> list[int]:
    return [e.status_changed.status for e in events if e.HasField("status_changed")]


def kinds(events: list[event_pb2.Event]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 30, interval: float = 0.05
) -> None:
    """Poll `check` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
