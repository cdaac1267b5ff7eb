"""The thin gRPC `FileService` of a node: decode, call `Files`, encode."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kodosumi.errors import InvalidArgument, NotFound
from kodosumi.rpc.guard import current_principal
from kodosumi.streams.frames import varint
from kodosumi.v1 import file_pb2, file_pb2_grpc
from kodosumid.files.model import INPUT, OUTPUT, Direction, FileLink, FileRecord
from kodosumid.files.peer_link import PeerFiles
from kodosumid.files.service import Files, UploadHeader

Context = grpc.aio.ServicerContext[Any, Any]

_DIRECTIONS: dict[int, Direction | None] = {
    file_pb2.FILE_DIRECTION_UNSPECIFIED: None,
    file_pb2.FILE_DIRECTION_INPUT: INPUT,
    file_pb2.FILE_DIRECTION_OUTPUT: OUTPUT,
}
_WIRE = {INPUT: file_pb2.FILE_DIRECTION_INPUT, OUTPUT: file_pb2.FILE_DIRECTION_OUTPUT}


def chunk_frame(offset: int, chunk: bytes) -> bytes:
    """A `DownloadFileResponse` {offset, chunk} framed by hand: one copy of the chunk, where
    building the message and serializing it makes two (the guard passes bytes on as they are)."""
    return b"".join((b"\x10", varint(offset), b"\x1a", varint(len(chunk)), chunk))


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


def file_info(record: FileRecord, node_id: str, link: FileLink | None = None) -> file_pb2.FileInfo:
    info = file_pb2.FileInfo(
        file_id=record.file_id,
        name=link.name if link is not None else record.name,
        media_type=record.media_type,
        size=record.size,
        sha256=record.sha256,
        owner=record.owner,
        create_time=_timestamp(record.create_ns),
        node_id=node_id,
    )
    if link is None:
        info.expire_time.CopyFrom(_timestamp(record.expire_ns))
    else:
        info.execution_id = link.execution_id
        info.direction = _WIRE[link.direction]
    return info


async def _chunks(requests: AsyncIterator[file_pb2.UploadFileRequest]) -> AsyncIterator[bytes]:
    async for request in requests:
        if request.WhichOneof("part") != "chunk":
            raise InvalidArgument.field("header", "only in the first message of the stream")
        yield request.chunk


class FileServicer(file_pb2_grpc.FileServiceServicer):
    def __init__(self, files: Files, node_id: str, peers: PeerFiles | None = None) -> None:
        self.files = files
        self.node_id = node_id
        # Files of executions this node forwarded live on the peer running them.
        self.peers = peers

    async def _peer_of(self, execution_id: str) -> str:
        if self.peers is None or not execution_id:
            return ""
        return await self.files.relayed(current_principal(), execution_id)

    async def UploadFile(  # type: ignore[override]
        self, request_iterator: AsyncIterator[file_pb2.UploadFileRequest], context: Context
    ) -> file_pb2.UploadFileResponse:
        principal = current_principal()
        first = await anext(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument.field("header", "required as the first message of the stream")
        h = first.header
        header = UploadHeader(h.name, h.size, h.sha256, h.media_type, h.execution_id)
        record, link = await self.files.upload(principal, header, _chunks(request_iterator))
        return file_pb2.UploadFileResponse(file=file_info(record, self.node_id, link))

    async def DownloadFile(  # type: ignore[override]
        self, request: file_pb2.DownloadFileRequest, context: Context
    ) -> AsyncIterator[file_pb2.DownloadFileResponse]:
        try:
            record, chunks = await self.files.download(
                current_principal(), request.file_id, min(request.offset, 2**63 - 1)
            )
        except NotFound:
            # An output of a forwarded execution: the peer has it; pass its stream through.
            node = await self._peer_of(request.execution_id)
            if not node or self.peers is None:
                raise
            async for response in self.peers.download(node, request):
                yield response
            return
        info: file_pb2.FileInfo | None = file_info(record, self.node_id)
        offset = request.offset
        with contextlib.closing(chunks):
            for chunk in chunks:
                if info is not None:
                    yield file_pb2.DownloadFileResponse(file=info, offset=offset, chunk=chunk)
                    info = None
                else:
                    yield chunk_frame(offset, chunk)  # type: ignore[misc]  # bytes: passed on
                offset += len(chunk)
        if info is not None:  # nothing from `offset` on (an empty file, or resumed at its end)
            yield file_pb2.DownloadFileResponse(file=info, offset=offset)

    async def StatFile(
        self, request: file_pb2.StatFileRequest, context: Context
    ) -> file_pb2.StatFileResponse:
        record = await self.files.stat(current_principal(), request.file_id)
        return file_pb2.StatFileResponse(file=file_info(record, self.node_id))

    async def ListFiles(
        self, request: file_pb2.ListFilesRequest, context: Context
    ) -> file_pb2.ListFilesResponse:
        if request.direction not in _DIRECTIONS:
            raise InvalidArgument.field("direction", "INPUT, OUTPUT or UNSPECIFIED (both)")
        node = await self._peer_of(request.execution_id)
        if node and self.peers is not None:
            return await self.peers.list(node, request)
        found = await self.files.list_files(
            current_principal(), request.execution_id, _DIRECTIONS[request.direction]
        )
        return file_pb2.ListFilesResponse(
            files=[file_info(record, self.node_id, link) for link, record in found]
        )

    async def DeleteFile(
        self, request: file_pb2.DeleteFileRequest, context: Context
    ) -> file_pb2.DeleteFileResponse:
        await self.files.delete(current_principal(), request.file_id)
        return file_pb2.DeleteFileResponse()
