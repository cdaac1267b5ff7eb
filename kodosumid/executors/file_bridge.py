"""The gRPC `FileBridge` of an executor: `ctx.files` and `ctx.save_file` through its node.

Imported only inside the executor actor. Inputs are fetched from the node's FileService
(`DownloadFile`, over mTLS with the flow's identity or the node's, whatever host of the Ray
cluster the executor runs on) into a cache of this host, checked against their SHA-256 and
made read-only; later runs on the same host that get the same content use the cached copy.
Outputs go up with `UploadFile`, as outputs of their execution, hashed on the way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

from engine.files import FileRef, SavedFile
from kodosumi.file_wire import send_upload, upload_requests
from kodosumi.v1 import file_pb2, file_pb2_grpc


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"kodosumi-files-{os.getuid()}"


class FileFetchFailed(RuntimeError):
    """An input's content did not arrive whole (its SHA-256 differs)."""


class GrpcFileBridge:
    """`engine.files.FileBridge` over the node's FileService (sync gRPC, thread-safe)."""

    def __init__(self, channel: Callable[[str], grpc.Channel], cache_dir: Path | None = None):
        # The channel to the node with a flow's credentials (GrpcFlowCaller.channel).
        self._channel = channel
        self.cache_dir = cache_dir or default_cache_dir()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _stub(self, flow: str) -> file_pb2_grpc.FileServiceStub:
        return file_pb2_grpc.FileServiceStub(self._channel(flow))

    def _lock_for(self, sha256: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256, threading.Lock())

    def fetch(self, flow: str, ref: FileRef) -> Path:
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        cached = self.cache_dir / ref.sha256
        with self._lock_for(ref.sha256):
            if cached.is_file():
                return cached
            part = self.cache_dir / f"{ref.sha256}.{uuid.uuid4().hex}.part"
            digest = hashlib.sha256()
            try:
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    request = file_pb2.DownloadFileRequest(file_id=ref.file_id)
                    for response in self._stub(flow).DownloadFile(request):
                        digest.update(response.chunk)
                        view = memoryview(response.chunk)
                        while view:
                            view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                if digest.hexdigest() != ref.sha256:
                    raise FileFetchFailed(
                        f"input file {ref.name!r} ({ref.file_id}) arrived with another SHA-256"
                    )
                part.chmod(stat.S_IRUSR)  # read-only for the flow
                os.replace(part, cached)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()
            return cached

    def save(
        self, flow: str, execution_id: str, name: str, source: bytes | Path, media_type: str
    ) -> SavedFile:
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        header = file_pb2.UploadFileHeader(
            name=name, media_type=media_type, size=size, execution_id=execution_id
        )
        # Hashed while it is sent (the SHA-256 goes last): the file is read once.
        info = send_upload(self._channel(flow), upload_requests(header, source)).file
        return SavedFile(
            info.file_id, info.name, info.size, info.sha256, info.media_type, info.node_id
        )
