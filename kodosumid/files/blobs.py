"""The bytes of stored files: content-addressed blobs under the node's state directory.

`<root>/blobs/<first two hex digits>/<sha256>`, each 0600 in 0700 folders. An upload is
written to a temp file in `<root>/tmp/` (same file system), hashed as it arrives, fsynced,
and renamed into place only when its hash checks out, then the folder is fsynced: a blob
that is visible is whole, and an upload cut in the middle leaves only a temp file, which
the next start removes. Two owners of the same bytes share one blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

from kodosumi.sqlite import private_dir

FILE_MODE = 0o600
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(text: str) -> bool:
    return bool(_SHA256.match(text))


class BlobWriter:
    """One upload on its way to a blob: `append` chunks, then `commit` (or `abort`).

    Each chunk is hashed and written in threads while the next one arrives (hashlib and
    os.write release the GIL): at most one chunk is in flight, so memory stays one chunk
    beside the one being received."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.temp = store.tmp_dir / f"{uuid.uuid4().hex}.part"
        self._fd: int | None = os.open(
            self.temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE
        )
        self._hash = hashlib.sha256()
        self._pending: asyncio.Future[Any] | None = None
        # Bytes accepted so far (written, or on their way in the thread).
        self.size = 0

    def _write(self, chunk: bytes) -> None:
        fd = self._fd
        assert fd is not None
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]

    async def append(self, chunk: bytes) -> None:
        if self._pending is not None:
            await self._pending
        self.size += len(chunk)
        # Writing and hashing run side by side (each in a thread), in order chunk by chunk.
        loop = asyncio.get_running_loop()
        self._pending = asyncio.gather(
            loop.run_in_executor(None, self._write, chunk),
            loop.run_in_executor(None, self._hash.update, chunk),
        )

    async def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    @property
    def sha256(self) -> str:
        """The hash of what was written (after `flush`)."""
        return self._hash.hexdigest()

    async def commit(self) -> str:
        """Make the blob durable and visible under its hash; returns the hash."""
        await self.flush()
        sha = self.sha256
        fd, self._fd = self._fd, None
        assert fd is not None
        await asyncio.to_thread(self.store.place, fd, self.temp, sha)
        return sha

    def abort(self) -> None:
        """Drop the upload: its temp file goes (once a write in flight is done)."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.add_done_callback(lambda _: self._discard())
        else:
            self._discard()

    def _discard(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.tmp_dir = root / "tmp"

    def open(self) -> None:
        """Create the folders and remove what uploads cut short left behind."""
        private_dir(self.root)
        private_dir(self.blob_dir)
        private_dir(self.tmp_dir)
        for leftover in self.tmp_dir.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.blob_dir / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def place(self, fd: int, temp: Path, sha256: str) -> None:
        """fsync the temp file, rename it to its blob path, fsync the folder (blocking)."""
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.path(sha256)
        folder = private_dir(final.parent)
        if final.exists():
            temp.unlink()  # the same bytes are stored already
            return
        os.replace(temp, final)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read(self, sha256: str, offset: int, chunk_bytes: int) -> Generator[bytes, None, None]:
        """The blob from `offset` on, in chunks (the file is open while iterated)."""
        with open(self.path(sha256), "rb", buffering=0) as f:
            f.seek(offset)
            while chunk := f.read(chunk_bytes):
                yield chunk

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()
