"""The fan-out bench's baseline: a bare grpc.aio server streaming pre-serialized bytes.

    python -m bench.raw_fanout_server CERT_DIR PORT_FILE STREAMS RATE COUNT

Serves `WatchExecution`-shaped streams (mTLS, the node's certificate) with no node behind
them: once `STREAMS` streams are open it makes `COUNT` events at `RATE` per second, each
framed once; every stream sends whatever is new since its last write as one message (the
natural coalescing of one writer per stream). What one process can do on this machine.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from kodosumi.streams.frames import TAG, varint
from kodosumi.v1 import event_pb2

METHOD = "/bench.Raw/Watch"


class Source:
    def __init__(self, streams: int, rate: float, count: int) -> None:
        self.streams, self.rate, self.count = streams, rate, count
        self.frames: list[bytes] = []
        self.open = 0
        self.changed: asyncio.Future[None] | None = None
        self.started = asyncio.Event()

    def _wake(self) -> None:
        changed, self.changed = self.changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def run(self) -> None:
        await self.started.wait()
        await asyncio.sleep(2.0)  # as the node's flow does: the clients settle first
        start = time.monotonic()
        for i in range(self.count):
            delay = start + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            event = event_pb2.Event(execution_id="raw", seq=i + 1)
            event.time_unix_nano = time.time_ns()
            event.progress.message = "x" * 46
            data = event.SerializeToString()
            self.frames.append(TAG + varint(len(data)) + data)
            self._wake()

    async def watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self.open += 1
        if self.open >= self.streams:
            self.started.set()
        cursor = 0
        while cursor < self.count:
            if cursor < len(self.frames):
                end = len(self.frames)
                yield b"".join(self.frames[cursor:end])
                cursor = end
                continue
            if self.changed is None:
                self.changed = asyncio.get_running_loop().create_future()
            await self.changed


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


async def main(argv: list[str]) -> None:
    cert_dir, port_file, streams, rate, count = argv
    d = Path(cert_dir)
    source = Source(int(streams), float(rate), int(count))
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 4096)])
    handler = grpc.unary_stream_rpc_method_handler(source.watch)  # no (de)serializers: bytes
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Raw", {"Watch": handler}),)
    )
    credentials = grpc.ssl_server_credentials(
        [((d / "node.key").read_bytes(), (d / "node.pem").read_bytes())],
        root_certificates=(d / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    _write(port_file, str(port))
    await source.run()
    await server.wait_for_termination()  # the streams finish; the bench stops the process


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
