"""The files bench's baseline: a bare grpc.aio server moving the same 256 KiB chunks.

    python -m bench.raw_files_server CERT_DIR PORT_FILE

`/bench.RawFiles/Upload` (client stream) reads every message and counts its bytes;
`/bench.RawFiles/Download` (server stream) sends N pre-built messages of 256 KiB (N = the
request's first 8 bytes). No (de)serializers, no store, no hashing, no disk: the transport
alone, mTLS with the node's certificate, in a process of its own like the node.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from kodosumi.v1 import file_pb2

CHUNK = 256 * 1024


def download_message(offset: int) -> bytes:
    return file_pb2.DownloadFileResponse(offset=offset, chunk=b"\x5a" * CHUNK).SerializeToString()


async def upload(requests: AsyncIterator[bytes], context: Any) -> bytes:
    total = 0
    async for message in requests:
        total += len(message)
    return total.to_bytes(8, "big")


async def download(request: bytes, context: Any) -> AsyncIterator[bytes]:
    message = download_message(0)
    for _ in range(int.from_bytes(request[:8], "big")):
        yield message


async def main(argv: list[str]) -> None:
    cert_dir, port_file = argv
    d = Path(cert_dir)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * 1024 * 1024)])
    handlers = {
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Download": grpc.unary_stream_rpc_method_handler(download),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.RawFiles", handlers),)
    )
    credentials = grpc.ssl_server_credentials(
        [((d / "node.key").read_bytes(), (d / "node.pem").read_bytes())],
        root_certificates=(d / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    Path(port_file).write_text(str(port))  # noqa: ASYNC240  (once, at start)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
