"""The thin gRPC `FileService` of a node: decode, call `Files`, encode."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from kodosumi.errors import InvalidArgument, NotFound
from kodosumi.file_wire import download_chunk, upload_chunk_of
from kodosumi.rpc.guard import current_principal
from kodosumi.v1 import file_pb2, file_pb2_grpc
from kodosumid.files.blobs import is_sha256
from kodosumid.files.model import INPUT, OUTPUT, Direction, FileLink, FileRecord
from kodosumid.files.peer_link import PeerFiles
from kodosumid.files.service import Files, UploadHeader

Context = grpc.aio.ServicerContext[Any, Any]
_SERVICE = "kodosumi.v1.FileService"

_DIRECTIONS: dict[int, Direction | None] = {
    file_pb2.FILE_DIRECTION_UNSPECIFIED: None,
    file_pb2.FILE_DIRECTION_INPUT: INPUT,
    file_pb2.FILE_DIRECTION_OUTPUT: OUTPUT,
}
_WIRE = {INPUT: file_pb2.FILE_DIRECTION_INPUT, OUTPUT: file_pb2.FILE_DIRECTION_OUTPUT}


def upload_request(raw: bytes) -> file_pb2.UploadFileRequest | memoryview:
    """UploadFile's request deserializer: a chunk message is the chunk, a view of the bytes
    gRPC received (no parse, no copy); the header and trailer are parsed as usual."""
    chunk = upload_chunk_of(raw)
    return chunk if chunk is not None else file_pb2.UploadFileRequest.FromString(raw)


def add_file_service(servicer: FileServicer, server: grpc.aio.Server) -> None:
    """The generated registration, with `upload_request` decoding UploadFile's requests."""
    table = _Handlers()
    file_pb2_grpc.add_FileServiceServicer_to_server(servicer, table)  # type: ignore[arg-type]
    handlers = dict(table.handlers)
    upload = handlers["UploadFile"]
    handlers["UploadFile"] = grpc.stream_unary_rpc_method_handler(
        servicer.UploadFile,
        request_deserializer=upload_request,
        response_serializer=upload.response_serializer,
    )
    generic = grpc.method_handlers_generic_handler(_SERVICE, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(_SERVICE, handlers)


class _Handlers:
    """Catches the method handlers the generated code registers."""

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]

    def add_generic_rpc_handlers(self, generic: Any) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers = handlers


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


class _Parts:
    """The chunks of an upload's stream (views of what arrived), and its trailer's SHA-256."""

    def __init__(self, requests: AsyncIterator[file_pb2.UploadFileRequest | memoryview]) -> None:
        self.requests = requests
        self.trailer = ""

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        async for request in self.requests:
            if type(request) is memoryview:
                if self.trailer:
                    raise InvalidArgument.field("trailer", "only as the last message")
                yield request
                continue
            assert isinstance(request, file_pb2.UploadFileRequest)
            part = request.WhichOneof("part")
            if part == "chunk":  # framed in a way `upload_chunk_of` does not take
                if self.trailer:
                    raise InvalidArgument.field("trailer", "only as the last message")
                yield request.chunk
            elif part == "trailer" and not self.trailer:
                sha = request.trailer.sha256
                if not is_sha256(sha):
                    raise InvalidArgument.field("trailer.sha256", "64 lower-case hex digits")
                self.trailer = sha
            elif part == "trailer":
                raise InvalidArgument.field("trailer", "only once, as the last message")
            else:
                raise InvalidArgument.field("header", "only in the first message of the stream")


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
        self,
        request_iterator: AsyncIterator[file_pb2.UploadFileRequest | memoryview],
        context: Context,
    ) -> file_pb2.UploadFileResponse:
        principal = current_principal()
        first = await anext(request_iterator, None)
        if not isinstance(first, file_pb2.UploadFileRequest) or (
            first.WhichOneof("part") != "header"
        ):
            raise InvalidArgument.field("header", "required as the first message of the stream")
        h = first.header
        header = UploadHeader(h.name, h.size, h.sha256, h.media_type, h.execution_id)
        parts = _Parts(request_iterator)  # chunks are views (`upload_request`)
        record, link = await self.files.upload(
            principal, header, parts.chunks(), trailer=lambda: parts.trailer
        )
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
        async with contextlib.aclosing(chunks):  # type: ignore[type-var]
            async for chunk in chunks:
                if info is not None:
                    first = bytes(chunk)
                    yield file_pb2.DownloadFileResponse(file=info, offset=offset, chunk=first)
                    info = None
                else:
                    # Framed by hand (one copy of the view); the guard passes bytes on.
                    yield download_chunk(offset, chunk)  # type: ignore[misc]
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
