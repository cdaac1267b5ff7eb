"""This node calling its peers over mTLS, as itself (its node certificate).

A peer's NODE_POLICY lets node identities use the FlowService, so a launch forwarded here
runs on the peer as an execution owned by this node; this node relays it to its own client
(`kodosumid/executions/relay.py`). Forwarded calls carry `kodosumi-forwarded-by: <node id>`: not an
identity (that comes from the certificate) but a loop guard, so that a peer never forwards
a forwarded launch again, even between `--insecure` nodes that have no identities.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kodosumi.errors import KodosumiError, NotFound, ResourceExhausted, Unavailable
from kodosumi.jsonvalue import dict_to_struct, python_to_value
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import file_pb2_grpc, flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc
from kodosumid.config import PeersConfig
from kodosumid.executions.relay import RemoteLaunch
from kodosumid.network.backoff import is_transient
from kodosumid.network.peers import Peer, PeerTable, Probe
from kodosumid.network.remote_errors import catalog_error

log = logging.getLogger(__name__)

FORWARDED_BY = "kodosumi-forwarded-by"
# On a forwarded launch: the identity it is for (the execution's owner on the forwarding
# node), whose file quota the files the peer pulls for it spend there.
FORWARDED_FOR = "kodosumi-forwarded-for"
# The node's own message limit (`NodeConfig.max_message_bytes`) unless told otherwise.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_WATCH_METHOD = "/kodosumi.v1.FlowService/WatchExecution"
# More time for a forwarded launch with input files: the peer pulls them before it answers.
FILES_PULL_SECONDS = 600.0


def forwarded_call(metadata: Any) -> bool:
    """Whether a call's invocation metadata marks it as forwarded by a peer."""
    return any(key == FORWARDED_BY for key, _ in metadata or ())


def forwarded_for(metadata: Any) -> str:
    """The identity a forwarded launch is for ("" when the metadata names none). Only what
    a peer node says is taken (`kodosumid/files/peer_pull.py`)."""
    return next((str(value) for key, value in metadata or () if key == FORWARDED_FOR), "")


def event_frames(raw: bytes) -> list[bytes]:
    """The serialized events of a serialized WatchExecutionResponse, without parsing them:
    field 1 (`events`) is repeated, length-delimited; other fields are skipped."""
    frames, i, end = [], 0, len(raw)
    while i < end:
        key, i = _read_varint(raw, i)
        wire_type = key & 7
        if wire_type == 2:
            size, i = _read_varint(raw, i)
            if key >> 3 == 1:
                frames.append(raw[i : i + size])
            i += size
        elif wire_type == 0:
            _, i = _read_varint(raw, i)
        elif wire_type in (1, 5):
            i += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire_type} in a watch response")
    return frames


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _too_large(error: grpc.aio.AioRpcError) -> bool:
    """The call broke on this side's receive limit (gRPC says so only in its details)."""
    return error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (
        error.details() or ""
    )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def link_options(peers: PeersConfig) -> list[tuple[str, int | str]]:
    """Channel options of peer links: keepalive pings break a silent dead link within
    keepalive + keepalive_timeout; a connection attempt gives up after connect_timeout (gRPC
    takes the minimum reconnect backoff as the connect deadline) and reconnects are never
    further apart than the health interval, so a healed link is found again in seconds."""
    return [
        ("grpc.keepalive_time_ms", _ms(peers.keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", _ms(peers.keepalive_timeout_seconds)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.min_reconnect_backoff_ms", _ms(peers.connect_timeout_seconds)),
        ("grpc.initial_reconnect_backoff_ms", _ms(min(1.0, peers.connect_timeout_seconds))),
        (
            "grpc.max_reconnect_backoff_ms",
            _ms(max(peers.connect_timeout_seconds, peers.health_interval_seconds)),
        ),
    ]


class PeerLinks:
    """One channel per peer endpoint and node id, dialled with this node's own credentials.

    The handshake checks that the server is the node the registry or zeroconf named for that
    endpoint: a server with another identity there is refused (SERVER_IDENTITY_MISMATCH).
    """

    def __init__(
        self,
        tls: TlsMaterial | None,
        peers: PeersConfig | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.tls = tls
        # A peer's message is held whole before it is stored: the node takes from a peer no
        # larger message than from anyone else (a relay holds one response at a time).
        self.max_message_bytes = max_message_bytes
        self.options = [
            *link_options(peers or PeersConfig()),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._channels: dict[tuple[str, str], grpc.aio.Channel] = {}

    def channel(self, endpoint: str, node_id: str) -> grpc.aio.Channel:
        key = (endpoint, node_id)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = open_channel(
                endpoint, self.tls, self.options, expect=ServerExpectation.node(node_id)
            )
        return channel

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


class PeerClient:
    def __init__(
        self,
        table: PeerTable,
        links: PeerLinks,
        node_id: str,
        call_timeout: float,
        health_timeout: float = 2.0,
    ) -> None:
        self.table = table
        self.links = links
        self.node_id = node_id
        self.call_timeout = call_timeout
        self.health_timeout = health_timeout
        self._metadata = ((FORWARDED_BY, node_id),)

    def _flows(self, endpoint: str, node_id: str) -> flow_pb2_grpc.FlowServiceAsyncStub:
        return flow_pb2_grpc.FlowServiceStub(self.links.channel(endpoint, node_id))  # type: ignore[return-value]

    def files(self, node_id: str) -> file_pb2_grpc.FileServiceAsyncStub:
        """The FileService of a peer, on its first endpoint (kodosumid/files/peer_link.py)."""
        endpoint = self._endpoints(node_id)[0]
        return file_pb2_grpc.FileServiceStub(self.links.channel(endpoint, node_id))  # type: ignore[return-value]

    def _endpoints(self, node_id: str) -> tuple[str, ...]:
        peer = self.table.get(node_id)
        if peer is None or not peer.endpoints:
            raise Unavailable(f"peer {node_id} is not known here (yet)", reason="PEER_UNAVAILABLE")
        return peer.endpoints

    # -- health -------------------------------------------------------------------------------

    async def probe(self, peer: Peer) -> Probe:
        """Is the peer serving? Asks its endpoints in turn; fetches its node info when its LAN
        announcement says its flows changed (and checks that it is the node it claims)."""
        reason = "no endpoint"
        for endpoint in peer.endpoints:
            channel = self.links.channel(endpoint, peer.node_id)
            try:
                health = await self._health(channel)
                if health.status != health_pb2.HealthCheckResponse.SERVING:
                    reason = f"{endpoint} is not serving"
                    continue
                info = None
                if peer.needs_node_info:
                    response = await node_pb2_grpc.NodeServiceStub(channel).GetNodeInfo(
                        node_pb2.GetNodeInfoRequest(), timeout=self.call_timeout
                    )
                    info = response.node
                    if info.node_id != peer.node_id:
                        reason = f"{endpoint} serves node {info.node_id}, not {peer.node_id}"
                        continue
                return Probe(True, endpoint, "serving", info)
            except grpc.aio.AioRpcError as e:
                reason = f"{endpoint}: {e.code().name} {e.details() or ''}".strip()
        return Probe(False, "", reason)

    async def _health(self, channel: grpc.aio.Channel) -> health_pb2.HealthCheckResponse:
        """One health check within `health_timeout`. It waits for a connection rather than
        failing at once, and a call lost with a link that just broke is asked again: a peer
        is dead when it does not answer in time, not when an old connection died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.health_timeout
        while True:
            try:
                response: health_pb2.HealthCheckResponse = await health_pb2_grpc.HealthStub(
                    channel
                ).Check(
                    health_pb2.HealthCheckRequest(),
                    timeout=max(0.01, deadline - loop.time()),
                    wait_for_ready=True,
                )
                return response
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or deadline - loop.time() < 0.1:
                    raise
            await asyncio.sleep(0.05)

    async def reachable(self, node_id: str) -> bool:
        """Whether the peer answers a health check now (a relay asks when its stream broke)."""
        peer = self.table.get(node_id)
        if peer is None:
            return False
        return (await self.probe(peer)).alive

    # -- PeerExecutions -----------------------------------------------------------------------

    async def launch(
        self,
        flow: str,
        inputs: dict[str, Any],
        files: dict[str, str] | None = None,
        before: Callable[[str], Awaitable[None]] | None = None,
        on_behalf_of: str = "",
    ) -> RemoteLaunch:
        """Launch `flow` on the best peer offering it. The peer's answers to the request itself
        (bad inputs, too busy) are the client's answers; unreachable peers are skipped.
        `on_behalf_of`: the identity the launch is for (the peer charges its files to it)."""
        candidates = self.table.candidates(flow)
        if not candidates and any(flow in p.flows for p in self.table.entries()):
            raise Unavailable(
                f"the peers offering {flow!r} do not answer now", reason="PEER_UNAVAILABLE"
            )
        if not candidates:
            raise NotFound(
                f"no flow named {flow!r} on this node or its peers", reason="FLOW_NOT_FOUND"
            )
        request = flow_pb2.LaunchExecutionRequest(
            flow=flow, inputs=dict_to_struct(inputs), files=files or {}
        )
        # The peer pulls the input files before it answers (kodosumid/files/peer_pull.py).
        timeout = self.call_timeout + (FILES_PULL_SECONDS if files else 0.0)
        metadata: tuple[tuple[str, str], ...] = self._metadata
        if on_behalf_of:
            metadata = (*metadata, (FORWARDED_FOR, on_behalf_of))
        last: KodosumiError | None = None
        for peer in candidates:
            if before is not None:
                await before(peer.node_id)
            for endpoint in peer.endpoints:
                try:
                    response = await self._flows(endpoint, peer.node_id).LaunchExecution(
                        request, timeout=timeout, metadata=metadata
                    )
                except grpc.aio.AioRpcError as e:
                    error = catalog_error(e, peer=f"peer {peer.node_id}")
                    if is_transient(error):
                        last = error
                        continue  # the next endpoint of this peer
                    if isinstance(error, NotFound) and error.reason == "FLOW_NOT_FOUND":
                        last = error
                        break  # stale information: the next peer
                    raise error from None
                log.info("launched %s on peer %s as %s", flow, peer.node_id, endpoint)
                return RemoteLaunch(peer.node_id, response.execution.execution_id)
        assert last is not None
        if isinstance(last, NotFound):
            raise NotFound(
                f"no flow named {flow!r} on this node or its peers", reason="FLOW_NOT_FOUND"
            )
        raise Unavailable(
            f"no peer offering {flow!r} took the launch: {last.message}",
            reason="PEER_UNAVAILABLE",
        )

    async def watch(
        self, node_id: str, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]:
        """Batches of the peer's stored events after `after_seq`, as the bytes it stored."""
        request = flow_pb2.WatchExecutionRequest(execution_id=execution_id, after_seq=after_seq)
        endpoints = self._endpoints(node_id)
        for index, endpoint in enumerate(endpoints):
            stream: grpc.aio.UnaryStreamMultiCallable[Any, bytes]
            stream = self.links.channel(endpoint, node_id).unary_stream(
                _WATCH_METHOD,
                request_serializer=flow_pb2.WatchExecutionRequest.SerializeToString,
                response_deserializer=None,
            )
            call = stream(request, metadata=self._metadata)
            received = False
            try:
                async for raw in call:
                    received = True
                    yield event_frames(raw)
                return
            except grpc.aio.AioRpcError as e:
                if _too_large(e):
                    raise ResourceExhausted(
                        f"peer node {node_id} sent a message larger than the "
                        f"{self.links.max_message_bytes} bytes this node accepts "
                        f"({e.details()}); relay ended",
                        reason="PEER_MESSAGE_TOO_LARGE",
                    ) from None
                error = catalog_error(e, peer=f"peer {node_id}")
                if received or not is_transient(error) or index == len(endpoints) - 1:
                    raise error from None
            finally:
                call.cancel()

    async def cancel(self, node_id: str, execution_id: str, reason: str) -> None:
        request = flow_pb2.CancelExecutionRequest(execution_id=execution_id, reason=reason)
        await self._unary(node_id, "CancelExecution", request)

    async def provide_input(
        self, node_id: str, execution_id: str, request_id: str, value: Any
    ) -> None:
        request = flow_pb2.ProvideInputRequest(
            execution_id=execution_id, request_id=request_id, value=python_to_value(value)
        )
        await self._unary(node_id, "ProvideInput", request)

    async def _unary(self, node_id: str, method: str, request: Any) -> None:
        last: KodosumiError | None = None
        for endpoint in self._endpoints(node_id):
            try:
                await getattr(self._flows(endpoint, node_id), method)(
                    request, timeout=self.call_timeout, metadata=self._metadata
                )
                return
            except grpc.aio.AioRpcError as e:
                last = catalog_error(e, peer=f"peer {node_id}")
                if not is_transient(last):
                    raise last from None
        assert last is not None
        raise last
