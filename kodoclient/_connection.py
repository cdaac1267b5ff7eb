"""The connection half of the asyncio SDK: the lazily opened channel and stubs, the
blocking upload channel, and `_unary` (every unary call under a deadline, traced).
`AsyncClient` (kodoclient/_async.py) builds its calls on top of it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from kodoclient._spans import traced_unary
from kodoclient.config import ConnectConfig, resolve_config
from kodosumi.rpc.channel import open_channel, open_sync_channel
from kodosumi.telemetry.names import EXECUTION_ID
from kodosumi.v1 import flow_pb2_grpc, node_pb2_grpc

_Resp = TypeVar("_Resp")


class Connection:
    """One node's channel, opened lazily on the first call inside the running loop."""

    def __init__(
        self, config: ConnectConfig | None = None, *, rng: random.Random | None = None
    ) -> None:
        self._config = config if config is not None else resolve_config()
        # Reconnect jitter draws from here; tests pass a seeded generator.
        self._rng = rng if rng is not None else random.Random()
        self._channel: grpc.aio.Channel | None = None
        self._flow_stub: flow_pb2_grpc.FlowServiceAsyncStub | None = None
        self._node_stub: node_pb2_grpc.NodeServiceAsyncStub | None = None
        self._sync_channel: grpc.Channel | None = None

    def _flows(self) -> flow_pb2_grpc.FlowServiceAsyncStub:
        if self._flow_stub is None:
            self._open()
        assert self._flow_stub is not None
        return self._flow_stub

    def _nodes(self) -> node_pb2_grpc.NodeServiceAsyncStub:
        if self._node_stub is None:
            self._open()
        assert self._node_stub is not None
        return self._node_stub

    def _upload_channel(self) -> grpc.Channel:
        """A blocking channel to the node, for uploads (kodoclient/files.py), made once."""
        if self._sync_channel is None:
            config = self._config
            self._sync_channel = open_sync_channel(config.target, config.tls, expect=config.expect)
        return self._sync_channel

    def _open(self) -> None:
        self._channel = open_channel(
            self._config.target, self._config.tls, expect=self._config.expect
        )
        self._flow_stub = flow_pb2_grpc.FlowServiceStub(self._channel)
        self._node_stub = node_pb2_grpc.NodeServiceStub(self._channel)

    async def _unary(
        self,
        method: str,
        call: Callable[..., Awaitable[_Resp]],
        request: Any,
        call_timeout: float | None,
    ) -> _Resp:
        # Every unary call has a deadline: the caller's, else the config's.
        timeout = call_timeout or self._config.call_timeout
        execution_id = getattr(request, "execution_id", "")
        return await traced_unary(
            method,
            self._config.target,
            call,
            request,
            timeout,
            secure=self._config.secure,
            attributes={EXECUTION_ID: execution_id} if execution_id else None,
        )
