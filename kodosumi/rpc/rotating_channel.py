"""A client channel that follows rotating credentials.

gRPC channel credentials are fixed when a channel is made. `RotatingChannel` therefore keeps
one real channel per credentials generation: each new call goes over the channel of the
current generation, while calls and streams already running stay on the channel they started
on. Stubs bind to the `RotatingChannel` once and never notice a renewal. Older channels are
closed once two newer generations exist (their certificates have long been replaced) or when
the `RotatingChannel` closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any

import grpc

from kodosumi.credentials import RotatingCredentials
from kodosumi.telemetry import client_interceptors

# Retired channels kept open for streams that started on them.
_KEEP_RETIRED = 1

Options = list[tuple[str, int | str]]


def _secure_channel(target: str, credentials: RotatingCredentials, options: Options) -> Any:
    material = credentials.material
    creds = grpc.ssl_channel_credentials(
        root_certificates=material.ca_cert,
        private_key=material.key,
        certificate_chain=material.cert,
    )
    # Client spans and trace context while the process traces (kodosumi/telemetry/tracing.py).
    return grpc.aio.secure_channel(
        target, creds, options=options, interceptors=client_interceptors()
    )


class _Call:
    """A multi-callable that picks the current channel at each call."""

    def __init__(self, owner: RotatingChannel, kind: str, args: tuple[Any, ...]) -> None:
        self._owner = owner
        self._kind = kind
        self._args = args
        self._bound: tuple[int, Any] | None = None

    def _callable(self) -> Any:
        generation, channel = self._owner.current()
        if self._bound is None or self._bound[0] != generation:
            self._bound = (generation, getattr(channel, self._kind)(*self._args))
        return self._bound[1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._callable()(*args, **kwargs)


class _UnaryUnary(_Call, grpc.aio.UnaryUnaryMultiCallable):  # type: ignore[type-arg]
    pass


class _UnaryStream(_Call, grpc.aio.UnaryStreamMultiCallable):  # type: ignore[type-arg]
    pass


class _StreamUnary(_Call, grpc.aio.StreamUnaryMultiCallable):  # type: ignore[type-arg]
    pass


class _StreamStream(_Call, grpc.aio.StreamStreamMultiCallable):  # type: ignore[type-arg]
    pass


class RotatingChannel(grpc.aio.Channel):
    def __init__(
        self,
        target: str,
        credentials: RotatingCredentials,
        options: Options,
        factory: Callable[[str, RotatingCredentials, Options], Any] = _secure_channel,
    ) -> None:
        self.target = target
        self.credentials = credentials
        self._options = options
        self._factory = factory
        self._generation = credentials.generation
        self._channel: Any = factory(target, credentials, options)
        self._retired: list[Any] = []
        self._closing: set[Any] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def current(self) -> tuple[int, Any]:
        """The generation and the real channel new calls use (made anew after a renewal)."""
        generation = self.credentials.generation
        if generation != self._generation:
            self._retired.append(self._channel)
            self._channel = self._factory(self.target, self.credentials, self._options)
            self._generation = generation
            while len(self._retired) > _KEEP_RETIRED:
                self._close_later(self._retired.pop(0))
        return self._generation, self._channel

    def _close_later(self, channel: Any) -> None:
        """Close a retired channel in the background; `close()` closes what is left."""
        self._closing.add(channel)

        async def close() -> None:
            try:
                await channel.close()
            finally:
                self._closing.discard(channel)

        try:
            task = asyncio.get_running_loop().create_task(close())
        except RuntimeError:
            return  # no running loop: `close()` takes care of it
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _UnaryUnary(self, "unary_unary", (method, request_serializer, response_deserializer))

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _UnaryStream(
            self, "unary_stream", (method, request_serializer, response_deserializer)
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _StreamUnary(
            self, "stream_unary", (method, request_serializer, response_deserializer)
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return _StreamStream(
            self, "stream_stream", (method, request_serializer, response_deserializer)
        )

    async def close(self, grace: float | None = None) -> None:
        channels = [self._channel, *self._retired, *self._closing]
        self._retired.clear()
        self._closing.clear()
        for channel in channels:
            await channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        state: grpc.ChannelConnectivity = self.current()[1].get_state(try_to_connect)
        return state

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.current()[1].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self.current()[1].channel_ready()

    async def __aenter__(self) -> RotatingChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()
