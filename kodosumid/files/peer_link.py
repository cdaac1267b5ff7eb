"""File calls to peer nodes, as this node (gRPC): pulling the inputs of a forwarded launch,
and passing downloads and listings of a forwarded execution through to the peer running it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc

from kodosumi.v1 import file_pb2, file_pb2_grpc
from kodosumid.files.peer_pull import RemoteFile
from kodosumid.network.remote_errors import catalog_error

Stubs = Callable[[str], "file_pb2_grpc.FileServiceAsyncStub"]


class PeerFiles:
    def __init__(self, stub_for: Stubs, call_timeout: float = 30.0) -> None:
        self.stub_for = stub_for
        self.call_timeout = call_timeout

    async def stat(self, node_id: str, file_id: str) -> RemoteFile:
        try:
            response = await self.stub_for(node_id).StatFile(
                file_pb2.StatFileRequest(file_id=file_id), timeout=self.call_timeout
            )
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=f"peer {node_id}") from None
        f = response.file
        return RemoteFile(f.file_id, f.name, f.media_type, f.size, f.sha256)

    async def chunks(self, node_id: str, file_id: str) -> AsyncIterator[bytes]:
        async for response in self.download(node_id, file_pb2.DownloadFileRequest(file_id=file_id)):
            yield response.chunk

    async def download(
        self, node_id: str, request: file_pb2.DownloadFileRequest
    ) -> AsyncIterator[file_pb2.DownloadFileResponse]:
        try:
            async for response in self.stub_for(node_id).DownloadFile(request):
                yield response
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=f"peer {node_id}") from None

    async def list(
        self, node_id: str, request: file_pb2.ListFilesRequest
    ) -> file_pb2.ListFilesResponse:
        try:
            return await self.stub_for(node_id).ListFiles(request, timeout=self.call_timeout)
        except grpc.aio.AioRpcError as e:
            raise catalog_error(e, peer=f"peer {node_id}") from None
