"""The raw gRPC baseline: a plain grpc.aio server stream over mTLS, one message per event.

No interceptor, no authorization, no store: a generic handler that yields the same
pre-built `Event` (about 100 bytes serialized) `count` times; grpc serializes each one and
the client parses each one. The request reuses `WatchExecutionRequest`, `after_seq` = count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from bench import hermetic
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial, ensure_dev_pki
from kodosumi.v1 import event_pb2, flow_pb2

SERVICE = "bench.RawStream"
METHOD = f"/{SERVICE}/Stream"


def sample_event(message_size: int) -> event_pb2.Event:
    """An event shaped like the node's progress events (ids, seq, time, message)."""
    event = event_pb2.Event(execution_id="0" * 32, seq=123_456, attempt=1)
    event.time_unix_nano = 1_700_000_000_000_000_000
    event.progress.message = "x" * message_size
    return event


@asynccontextmanager
async def raw_stream_server(message_size: int) -> AsyncIterator[tuple[str, TlsMaterial]]:
    """Serve the raw stream on 127.0.0.1:0 with mTLS; yields (address, client credentials)."""
    node_files, client_files, _ = ensure_dev_pki(hermetic.scratch("raw-pki-"), "raw-stream")
    event = sample_event(message_size)

    async def stream(
        request: flow_pb2.WatchExecutionRequest, context: Any
    ) -> AsyncIterator[event_pb2.Event]:
        for _ in range(request.after_seq):
            yield event

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Stream": grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=flow_pb2.WatchExecutionRequest.FromString,
                response_serializer=event_pb2.Event.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    node = node_files.read()
    credentials = grpc.ssl_server_credentials(
        [(node.key, node.cert)], root_certificates=node.ca_cert, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}", client_files.read()
    finally:
        await server.stop(1)


def connect(address: str, tls: TlsMaterial) -> grpc.aio.Channel:
    """A channel opened the way node clients open theirs (same options)."""
    return open_channel(address, tls, expect=ServerExpectation.node())


async def receive(channel: grpc.aio.Channel, count: int) -> int:
    """Count the events of one stream of `count` messages (each parsed by the client)."""
    call = channel.unary_stream(
        METHOD,
        request_serializer=flow_pb2.WatchExecutionRequest.SerializeToString,
        response_deserializer=event_pb2.Event.FromString,
    )
    received = 0
    async for _ in call(flow_pb2.WatchExecutionRequest(after_seq=count), timeout=600):
        received += 1
    return received
