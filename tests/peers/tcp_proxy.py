"""A loopback TCP proxy whose connections a test can cut: a network break on demand."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self) -> None:
        self.target_port = 0
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()

    def cut(self) -> None:
        """Break every open connection (new ones are still accepted)."""
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()  # an RST, like a cable pulled mid-stream
        self._writers.clear()

    async def stop(self) -> None:
        """Stop listening and cut everything: the node behind is unreachable."""
        if self._server is not None:
            self._server.close()
            self.cut()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
