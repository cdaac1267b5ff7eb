"""A hostile peer: a real grpc.aio server over mTLS with a node certificate of the trust
domain, registered in the registry as a node offering `evil`. It accepts forwarded launches
and then answers `WatchExecution` the way a test tells it to: one oversize message, bytes that
are no event, events out of order, or a flood of valid events as fast as flow control lets it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, flow_pb2, registry_pb2_grpc
from kodosumi.v1 import registry_pb2 as rpb
from tests.registry.helpers import seconds

S = event_pb2
FLOW = "evil"


def event(execution_id: str, seq: int, **kind: Any) -> bytes:
    message = event_pb2.Event(execution_id=execution_id, seq=seq, attempt=1, **kind)
    return message.SerializeToString()


def framed(events: list[bytes]) -> bytes:
    """A WatchExecutionResponse of serialized events (field 1, repeated)."""
    response = flow_pb2.WatchExecutionResponse()
    for data in events:
        response.events.add().MergeFromString(data)
    return response.SerializeToString()


def line(execution_id: str, seq: int, size: int) -> bytes:
    return event(
        execution_id,
        seq,
        output_line=event_pb2.OutputLine(stream=event_pb2.OUTPUT_STREAM_STDOUT, text="x" * size),
    )


def status(execution_id: str, seq: int, value: int) -> bytes:
    return event(execution_id, seq, status_changed=event_pb2.StatusChanged(status=value))


class HostilePeer:
    """`mode`: "oversize" (one response of `size` bytes), "garbage" (a response whose event
    is not an Event), "gap" (seq 1, then seq 5), "flood" (`count` events of `size` bytes,
    then SUCCEEDED)."""

    def __init__(self, node_id: str, tls: TlsMaterial) -> None:
        self.node_id = node_id
        self.tls = tls
        self.mode = "flood"
        self.size = 64 * 1024
        self.count = 100
        self.sent_bytes = 0
        self.server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self) -> None:
        server = grpc.aio.server(options=[("grpc.max_send_message_length", 512 * 1024 * 1024)])
        handlers = {
            "LaunchExecution": grpc.unary_unary_rpc_method_handler(
                self._launch,
                request_deserializer=flow_pb2.LaunchExecutionRequest.FromString,
                response_serializer=flow_pb2.LaunchExecutionResponse.SerializeToString,
            ),
            "WatchExecution": grpc.unary_stream_rpc_method_handler(
                self._watch,
                request_deserializer=flow_pb2.WatchExecutionRequest.FromString,
                response_serializer=None,  # raw bytes: whatever this peer wants to send
            ),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("kodosumi.v1.FlowService", handlers),)
        )
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        credentials = grpc.ssl_server_credentials(
            [(self.tls.key, self.tls.cert)],
            root_certificates=self.tls.ca_cert,
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        await server.start()
        self.server, self.address = server, f"127.0.0.1:{port}"

    async def register(self, registry_address: str) -> None:
        """Announce itself to the registry as the node offering `evil`."""
        channel = open_channel(registry_address, self.tls, expect=ServerExpectation.registry())
        try:
            request = rpb.RegisterNodeRequest(
                node_id=self.node_id,
                endpoints=[self.address],
                flows=[flow_pb2.Flow(name=FLOW, entrypoint="evil:run")],
                version="0.1.0",
            )
            request.heartbeat_interval.CopyFrom(seconds(300))
            await registry_pb2_grpc.RegistryServiceStub(channel).RegisterNode(request, timeout=10)
        finally:
            await channel.close()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)

    async def _launch(
        self, request: flow_pb2.LaunchExecutionRequest, context: Any
    ) -> flow_pb2.LaunchExecutionResponse:
        execution = flow_pb2.Execution(
            execution_id=uuid.uuid4().hex,
            flow=request.flow,
            node_id=self.node_id,
            status=S.EXECUTION_STATUS_PENDING,
        )
        return flow_pb2.LaunchExecutionResponse(execution=execution)

    async def _watch(
        self, request: flow_pb2.WatchExecutionRequest, context: Any
    ) -> AsyncIterator[bytes]:
        eid, seq = request.execution_id, request.after_seq + 1
        if self.mode == "oversize":
            yield self._sent(framed([line(eid, seq, self.size)]))
        elif self.mode == "garbage":
            yield self._sent(b"\x0a\x03\xff\xff\xff")  # one "event" of three bytes: no Event
        elif self.mode == "gap":
            yield self._sent(framed([status(eid, seq, S.EXECUTION_STATUS_RUNNING)]))
            yield self._sent(framed([line(eid, seq + 4, 10)]))
        else:
            yield self._sent(framed([status(eid, seq, S.EXECUTION_STATUS_RUNNING)]))
            for i in range(self.count):
                yield self._sent(framed([line(eid, seq + 1 + i, self.size)]))
            end = seq + 1 + self.count
            yield self._sent(framed([status(eid, end, S.EXECUTION_STATUS_SUCCEEDED)]))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "gone")  # never ends by itself

    def _sent(self, data: bytes) -> bytes:
        self.sent_bytes += len(data)
        return data
