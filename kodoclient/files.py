"""Files in and out of runs, from the client's side (the node's `FileService`, docs/files.md).

    async with AsyncClient() as client:
        report = await client.files().upload(Path("q3.pdf"))
        execution = await client.launch("summarize", files={"report": report.file_id})
        ...
        await client.files().download(file_id, Path("out/summary.md"))

Uploads stream the content in chunks of 256 KiB after a header with its size, hashing it
on the way: its SHA-256 goes last, in a trailer, and the node checks both (a file is read
once; `kodosumi/file_wire.py`). Downloads write `<path>.part`, hashing it as it arrives,
and rename it once the SHA-256 checks out; an interrupted download resumes from the end of
the `.part` file, in the same call (a broken connection) or a later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import grpc

from kodoclient.errors import KodoclientError
from kodosumi.file_wire import CHUNK_BYTES, Progress, send_upload, upload_requests
from kodosumi.v1 import file_pb2, file_pb2_grpc

__all__ = [
    "CHUNK_BYTES",
    "FileCorrupted",
    "FilesClient",
    "Progress",
    "SyncFilesClient",
    "media_type_of",
    "send_upload",
    "sha256_of",
]

_READ_BYTES = 1024 * 1024
# A download broken by the connection is resumed this many times before the error surfaces.
RESUME_ATTEMPTS = 5
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class FileCorrupted(Exception):
    """A downloaded file's SHA-256 is not the one the node stated (the `.part` is removed)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest()


class _PartHash:
    """The SHA-256 and size of what a download wrote to its `.part` so far."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.size += len(chunk)

    @classmethod
    def of(cls, part: Path) -> _PartHash:
        """Of a `.part` on disk (blocking)."""
        found = cls()
        if part.exists():
            with open(part, "rb") as f:
                while block := f.read(_READ_BYTES):
                    found.add(block)
        return found


def media_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@contextlib.contextmanager
def _rpc(method: str) -> Iterator[None]:
    """gRPC failures as the SDK's errors (`KodoclientError`: code, reason, fields)."""
    try:
        yield
    except grpc.RpcError as e:
        raise KodoclientError.from_rpc(e, method) from None


class FilesClient:
    """The file calls of one channel (`AsyncClient.files()`); failures are
    `KodoclientError`s, a download whose content does not check out `FileCorrupted`."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        call_timeout: float = 30.0,
        *,
        upload_channel: Callable[[], grpc.Channel],
    ) -> None:
        self._stub = file_pb2_grpc.FileServiceStub(channel)
        self.call_timeout = call_timeout
        # A blocking channel to the same node for uploads (see `send_upload`).
        self._upload_channel = upload_channel

    async def upload(
        self,
        source: Path | bytes,
        *,
        name: str = "",
        media_type: str = "",
        execution_id: str = "",
        progress: Progress | None = None,
    ) -> file_pb2.FileInfo:
        """Store a file (a path, or bytes with a `name`); its `FileInfo` with the `file_id`."""
        if isinstance(source, bytes):
            if not name:
                raise ValueError("uploading bytes needs a name")
            size = len(source)
        else:
            name = name or source.name
            size = source.stat().st_size  # noqa: ASYNC240
        header = file_pb2.UploadFileHeader(
            name=name,
            media_type=media_type or media_type_of(name),
            size=size,
            execution_id=execution_id,
        )
        requests = upload_requests(header, source, progress)
        with _rpc("UploadFile"):
            response = await asyncio.to_thread(send_upload, self._upload_channel(), requests)
        return response.file

    async def stat(self, file_id: str) -> file_pb2.FileInfo:
        request = file_pb2.StatFileRequest(file_id=file_id)
        with _rpc("StatFile"):
            return (await self._stub.StatFile(request, timeout=self.call_timeout)).file

    async def list(
        self, execution_id: str, direction: int = file_pb2.FILE_DIRECTION_UNSPECIFIED
    ) -> list[file_pb2.FileInfo]:
        request = file_pb2.ListFilesRequest(execution_id=execution_id, direction=direction)  # type: ignore[arg-type]
        with _rpc("ListFiles"):
            return list((await self._stub.ListFiles(request, timeout=self.call_timeout)).files)

    async def delete(self, file_id: str) -> None:
        request = file_pb2.DeleteFileRequest(file_id=file_id)
        with _rpc("DeleteFile"):
            await self._stub.DeleteFile(request, timeout=self.call_timeout)

    async def read(self, file_id: str) -> bytes:
        """A small file's content, in memory."""
        parts: list[bytes] = []
        with _rpc("DownloadFile"):
            request = file_pb2.DownloadFileRequest(file_id=file_id)
            async for response in self._stub.DownloadFile(request):
                parts.append(response.chunk)
        return b"".join(parts)

    async def download(
        self,
        file_id: str,
        dest: Path,
        *,
        resume: bool = True,
        progress: Progress | None = None,
        attempts: int = RESUME_ATTEMPTS,
    ) -> file_pb2.FileInfo:
        """Save a file at `dest` (through `dest.part`); resumes a `.part` left before."""
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            part.unlink(missing_ok=True)
        info: file_pb2.FileInfo | None = None
        written = _PartHash()  # hashed as it is written: the file is not read back
        for attempt in range(attempts):
            offset = part.stat().st_size if part.exists() else 0
            if written.size != offset:  # a .part from before, or a write cut short
                written = await asyncio.to_thread(_PartHash.of, part)
            try:
                info = await self._download_from(file_id, part, offset, progress, written)
                break
            except grpc.aio.AioRpcError as e:
                if e.code() not in _RETRYABLE or attempt == attempts - 1:
                    raise KodoclientError.from_rpc(e, "DownloadFile") from None
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        assert info is not None
        if written.hash.hexdigest() != info.sha256:
            part.unlink(missing_ok=True)
            raise FileCorrupted(f"file {file_id}: the downloaded content's SHA-256 differs")
        os.replace(part, dest)
        return info

    async def _download_from(
        self,
        file_id: str,
        part: Path,
        offset: int,
        progress: Progress | None,
        written: _PartHash,
    ) -> file_pb2.FileInfo:
        request = file_pb2.DownloadFileRequest(file_id=file_id, offset=offset)
        info: file_pb2.FileInfo | None = None
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            async for response in self._stub.DownloadFile(request):
                if response.HasField("file"):
                    info = response.file
                if response.offset != offset:
                    raise FileCorrupted(
                        f"file {file_id}: a chunk came for offset {response.offset}"
                    )
                view = memoryview(response.chunk)
                while view:
                    view = view[os.write(fd, view) :]
                written.add(response.chunk)
                offset += len(response.chunk)
                if progress is not None and info is not None:
                    progress(offset, info.size)
        finally:
            os.close(fd)
        if info is None:
            raise FileCorrupted(f"file {file_id}: the node sent no metadata")
        return info


class SyncFilesClient:
    """`FilesClient` for the blocking `Client` (each call runs on the client's loop thread)."""

    def __init__(self, run: Callable[[Coroutine[Any, Any, Any]], Any], files: FilesClient) -> None:
        self._run = run
        self._files = files

    def upload(
        self,
        source: Path | bytes,
        *,
        name: str = "",
        media_type: str = "",
        progress: Progress | None = None,
    ) -> file_pb2.FileInfo:
        coro = self._files.upload(source, name=name, media_type=media_type, progress=progress)
        return self._run(coro)  # type: ignore[no-any-return]

    def download(
        self, file_id: str, dest: Path, *, resume: bool = True, progress: Progress | None = None
    ) -> file_pb2.FileInfo:
        coro = self._files.download(file_id, dest, resume=resume, progress=progress)
        return self._run(coro)  # type: ignore[no-any-return]

    def read(self, file_id: str) -> bytes:
        return self._run(self._files.read(file_id))  # type: ignore[no-any-return]

    def stat(self, file_id: str) -> file_pb2.FileInfo:
        return self._run(self._files.stat(file_id))  # type: ignore[no-any-return]

    def list(
        self, execution_id: str, direction: int = file_pb2.FILE_DIRECTION_UNSPECIFIED
    ) -> list[file_pb2.FileInfo]:
        return self._run(self._files.list(execution_id, direction))  # type: ignore[no-any-return]

    def delete(self, file_id: str) -> None:
        self._run(self._files.delete(file_id))
