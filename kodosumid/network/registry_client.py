"""The node's gRPC client of `registryd`: the write side for its own entry (registration)
and the read side for its peers (the registry feed), over one mTLS channel that carries the
node's own identity. Failed calls surface as catalog errors (`remote_errors`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import duration_pb2

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import node_pb2, registry_pb2_grpc
from kodosumi.v1 import registry_pb2 as rpb
from kodosumid.network.remote_errors import catalog_error

LIST_PAGE_SIZE = 1000


def _seconds(value: duration_pb2.Duration, default: float) -> float:
    total = value.seconds + value.nanos / 1e9
    return total if total > 0 else default


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class RegistryClient:
    def __init__(
        self, address: str, tls: TlsMaterial | None, call_timeout: float, registry_id: str = ""
    ) -> None:
        self.address = address
        self.call_timeout = call_timeout
        # The window the registry wants service statistics over (None: not said yet).
        self.stats_window: float | None = None
        # Any registry of the trust domain, or exactly the one the node enrolled with.
        self._channel = open_channel(address, tls, expect=ServerExpectation.registry(registry_id))
        self._stub: registry_pb2_grpc.RegistryServiceAsyncStub = (
            registry_pb2_grpc.RegistryServiceStub(self._channel)  # type: ignore[assignment]
        )

    async def close(self) -> None:
        await self._channel.close()

    # -- RegistryWriter -----------------------------------------------------------------------

    async def register(self, info: node_pb2.NodeInfo, heartbeat_interval: float | None) -> float:
        request = rpb.RegisterNodeRequest(
            node_id=info.node_id,
            endpoints=list(info.endpoints),
            flows=list(info.flows),
            version=info.version,
            capabilities=list(info.capabilities),
            load=info.load,
        )
        if heartbeat_interval is not None:
            request.heartbeat_interval.CopyFrom(_duration(heartbeat_interval))
        try:
            response = await self._stub.RegisterNode(request, timeout=self.call_timeout)
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer="registry") from None
        return _seconds(response.lease.heartbeat_interval, heartbeat_interval or 10.0)

    async def heartbeat(
        self,
        node_id: str,
        load: node_pb2.NodeLoad,
        time_limit: float,
        stats: rpb.ServiceStats | None = None,
    ) -> float:
        request = rpb.HeartbeatRequest(node_id=node_id, load=load)
        if stats is not None:
            request.service_stats.CopyFrom(stats)
        try:
            response = await self._stub.Heartbeat(request, timeout=time_limit)
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer="registry") from None
        if response.HasField("stats_window"):
            self.stats_window = _seconds(response.stats_window, 0.0) or None
        return _seconds(response.lease.heartbeat_interval, time_limit)

    async def deregister(self, node_id: str, reason: str, time_limit: float) -> None:
        request = rpb.DeregisterNodeRequest(node_id=node_id, reason=reason)
        try:
            await self._stub.DeregisterNode(request, timeout=time_limit)
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer="registry") from None

    # -- RegistryReader -----------------------------------------------------------------------

    async def list_nodes(self) -> tuple[list[rpb.RegisteredNode], int]:
        nodes: list[rpb.RegisteredNode] = []
        token, revision = "", 0
        try:
            while True:
                page = await self._stub.ListNodes(
                    rpb.ListNodesRequest(page_size=LIST_PAGE_SIZE, page_token=token),
                    timeout=self.call_timeout,
                )
                nodes += page.nodes
                # Paging reads several snapshots: watch from the oldest so nothing is missed.
                revision = page.revision if not revision else min(revision, page.revision)
                token = page.next_page_token
                if not token:
                    return nodes, revision
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer="registry") from None

    async def watch(
        self, after_revision: int
    ) -> AsyncIterator[tuple[list[rpb.RegistryChange], int]]:
        call = self._stub.WatchRegistry(rpb.WatchRegistryRequest(after_revision=after_revision))
        try:
            async for response in call:
                if response.changes:
                    yield list(response.changes), response.revision
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer="registry") from None
        finally:
            call.cancel()
