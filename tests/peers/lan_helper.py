"""A process that only runs LAN discovery (no node, no Ray), for the discovery tests.

    python -m tests.peers.lan_helper NODE_ID PORT [CA_CERT CERT KEY]

Advertises NODE_ID on 127.0.0.1 and prints one JSON line per peer seen or gone; on SIGTERM
it says goodbye on the LAN and exits. With TLS files it also answers as a live peer would:
`grpc.health.v1` SERVING and `GetNodeInfo` (its node id, no flows) over mTLS on a port of
its own (PORT is then ignored), so a node's health checks find it alive.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kodosumi.v1 import node_pb2, node_pb2_grpc
from kodosumid.network.discovery import LanDiscovery
from kodosumid.network.peers import LanAnnouncement, flows_digest


def _print(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class _Node(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    async def GetNodeInfo(
        self, request: node_pb2.GetNodeInfoRequest, context: Any
    ) -> node_pb2.GetNodeInfoResponse:
        return node_pb2.GetNodeInfoResponse(node=node_pb2.NodeInfo(node_id=self.node_id))


async def _serve(node_id: str, ca: bytes, cert: bytes, key: bytes) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    checks = health.aio.HealthServicer()
    await checks.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    node_pb2_grpc.add_NodeServiceServicer_to_server(_Node(node_id), server)
    credentials = grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=ca,
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


async def main(node_id: str, port: int, tls: list[bytes]) -> None:
    def seen(a: LanAnnouncement) -> None:
        _print("seen", node_id=a.node_id, endpoints=list(a.endpoints), flows=a.flows_digest)

    server = None
    digest = "f00d"
    if tls:
        server, port = await _serve(node_id, *tls)
        digest = flows_digest([])  # what GetNodeInfo says: no need to ask again
    discovery = LanDiscovery(
        node_id=node_id,
        port=port,
        interfaces=["127.0.0.1"],
        txt=lambda: {"id": node_id, "identity": "", "version": "helper", "flows": digest},
        on_seen=seen,
        on_gone=lambda gone: _print("gone", node_id=gone),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await discovery.start()
    _print("started", port=port)
    await stop.wait()
    await discovery.stop()
    if server is not None:
        await server.stop(0)
    _print("stopped")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), [Path(p).read_bytes() for p in sys.argv[3:6]]))
