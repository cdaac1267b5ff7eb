"""Streaming RPC spans end cleanly: the node's server span of a WatchExecution that the caller
hangs up is CANCELLED (not an ERROR with a GeneratorExit), the span is never held across the
stream's yields ("Failed to detach context"), and the SDK's blocking client ends its gRPC
client span once the terminal event arrived. Real node, real gRPC, the in-memory exporter.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from kodoclient import Client, ConnectConfig
from kodosumi.v1 import flow_pb2
from tests.node.helpers import collect, eventually, launch
from tests.observability.collector import SpanRecord
from tests.observability.conftest import Telemetry

SERVER = "kodosumi.v1.FlowService/WatchExecution"
CLIENT = "/kodosumi.v1.FlowService/WatchExecution"


def _named(telemetry: Telemetry, name: str) -> list[SpanRecord]:
    return [s for s in telemetry.finished() if s.name == name]


async def test_hung_up_and_finished_watches_leave_clean_server_spans(
    telemetry: Telemetry, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")
    node = await nodes(node_id="stream-spans")
    execution_id = await launch(node.flows, "chatty")
    await collect(node.flows, execution_id)  # finished: every watch below replays it
    before = len(_named(telemetry, SERVER))

    async def hang_up() -> None:
        call = node.flows.WatchExecution(
            flow_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=30
        )
        async for _ in call:
            break  # the caller goes away mid-stream
        call.cancel()

    rounds = 15
    for _ in range(rounds):
        await asyncio.gather(hang_up(), collect(node.flows, execution_id))

    async def all_ended() -> bool:
        return len(_named(telemetry, SERVER)) >= before + 2 * rounds

    await eventually(all_ended, timeout=30)
    spans = _named(telemetry, SERVER)[before:]
    assert not [s for s in spans if s.error], "a hung-up or finished watch is no server error"
    codes = {s.attributes["rpc.grpc.status_code"] for s in spans}
    assert codes <= {0, 1}  # OK or CANCELLED
    assert 1 in codes and 0 in codes
    detach = [r for r in caplog.records if "detach" in r.getMessage().lower()]
    assert not detach, detach[0].getMessage()


async def test_the_blocking_client_ends_its_watch_span_after_the_terminal_event(
    telemetry: Telemetry, nodes: Any
) -> None:
    node = await nodes(node_id="sync-watch-spans")
    tls = node.app.client_files.read()
    execution_id = await launch(node.flows, "chatty")
    before = len(_named(telemetry, CLIENT))

    def follow() -> list[Any]:
        with Client(ConnectConfig(target=node.app.address, tls=tls)) as client:
            events = list(client.watch(execution_id))
            client.wait(execution_id)
            return events

    events = await asyncio.to_thread(follow)
    assert events and events[-1].HasField("status_changed")
    # Ended (so exported) by the time the client is closed, not left to garbage collection.
    clients = _named(telemetry, CLIENT)[before:]
    assert clients, "the gRPC client span of the blocking watch never ended"
    servers = {s.span_id: s for s in _named(telemetry, SERVER)}
    client_ids = {s.span_id for s in clients}
    # The node's server span of that watch is the child of a client span that ended.
    children = [s for s in servers.values() if s.parent_id in client_ids]
    assert children and not [s for s in children if s.error]
    assert not [s for s in clients if s.error]
