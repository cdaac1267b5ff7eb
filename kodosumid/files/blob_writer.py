"""An upload on its way to a blob: hashed and written beside the network, in bounded memory.

The event loop only gathers what gRPC received (views of the messages, no copies) into
batches of 1 MiB. Each batch goes to two lanes (`lane.py`), threads of the upload's own
that take jobs one after another: one hashes it, the other writes it. hashlib and os.write
release the GIL, so hashing, the disk and the network overlap. At most `DEPTH` batches are
on the lanes; when the disk or the hash falls behind, the loop waits, stops reading, and
gRPC's flow control holds the client back: memory stays a few MiB per upload, whatever the
file's size.

The temp file is written with O_DIRECT from one aligned buffer when its file system takes
it (plain writes where it does not, as on tmpfs). Through the page cache, each MiB of an
upload is fresh memory the kernel must find (on this machine's VMs up to 1 s of system time
per 256 MiB) and the fsync that makes the blob durable then writes the whole file while the
client waits (~0.1 s per 256 MiB); written directly, the bytes are on the disk when each
write returns and the fsync at the end only makes the metadata durable. A blob is read
back from the disk rather than from memory; downloads stream it a chunk at a time anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import mmap
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from kodosumid.files.lane import Lane

FILE_MODE = 0o600
# Bytes handed to the lanes at once: a thread hand-off costs about what hashing 64 KiB does.
BATCH_BYTES = 1024 * 1024
# Batches on the lanes at once, besides the one filling up.
DEPTH = 2
# O_DIRECT writes start and end on this (the largest logical block size in use).
ALIGN = 4096
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)

Chunk = bytes | memoryview
# Makes a written temp file durable under its hash (`BlobStore.place`, blocking).
Place = Callable[[int, Path, str], None]


class _TempFile:
    """The temp file of one upload, written by one thread at a time (the write lane)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, FILE_MODE)
        self.buffer: mmap.mmap | None = None
        self.held = 0  # bytes in the buffer not written yet (fewer than ALIGN between writes)
        if _O_DIRECT:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | _O_DIRECT)
                self.buffer = mmap.mmap(-1, BATCH_BYTES)  # page-aligned
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise

    def write(self, chunks: list[Chunk]) -> None:
        if self.buffer is None:
            _write_all(self.fd, [memoryview(chunk) for chunk in chunks])
            return
        buffer = memoryview(self.buffer)
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                take = min(BATCH_BYTES - self.held, len(view))
                buffer[self.held : self.held + take] = view[:take]
                self.held += take
                view = view[take:]
                if self.held == BATCH_BYTES:
                    self._write_aligned(buffer)
        self._write_aligned(buffer)

    def _write_aligned(self, buffer: memoryview) -> None:
        """Write the whole blocks held; keep the rest at the buffer's start."""
        aligned = self.held - self.held % ALIGN
        done = 0
        while done < aligned:
            done += os.write(self.fd, buffer[done:aligned])
        rest = self.held - aligned
        buffer[:rest] = buffer[aligned : self.held]
        self.held = rest

    def finish(self) -> int:
        """Write what is held (the file's last, partial block) plainly; the fd to place."""
        if self.buffer is not None:
            if self.held:
                flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags & ~_O_DIRECT)
                _write_all(self.fd, [memoryview(self.buffer)[: self.held]])
                self.held = 0
            self.buffer.close()
            self.buffer = None
        return self.fd

    def discard(self) -> None:
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None
        os.close(self.fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _write_all(fd: int, views: list[memoryview]) -> None:
    while views:
        done = os.writev(fd, views)
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if views and done:
            views[0] = views[0][done:]


class BlobWriter:
    """One upload on its way to a blob: `append` chunks, then `commit` (or `abort`)."""

    def __init__(self, tmp_dir: Path, place: Place) -> None:
        self.temp = tmp_dir / f"{uuid.uuid4().hex}.part"
        self._file = _TempFile(self.temp)
        self._place = place
        self._hash = hashlib.sha256()
        self._hash_lane = Lane("blob-hash")
        self._write_lane = Lane("blob-write")
        self._batch: list[Chunk] = []
        self._batch_bytes = 0
        self._batches = 0  # handed to the lanes (batch k is job k on both)
        self._open = True
        # Bytes accepted so far (on the lanes, written, or in the batch).
        self.size = 0

    async def append(self, chunk: Chunk) -> None:
        """Take a chunk (bytes, or a view of received bytes: kept, not copied)."""
        if not chunk:
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        self.size += len(chunk)
        if self._batch_bytes >= BATCH_BYTES:
            await self._hand_off()

    async def _hand_off(self) -> None:
        # At most DEPTH batches on the lanes: wait (rarely) for the oldest to be done.
        if (oldest := self._batches + 1 - DEPTH) > 0:
            for lane in (self._hash_lane, self._write_lane):
                if lane.done < oldest:
                    await lane.wait_for(oldest)
                lane.check()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._batches += 1
        self._hash_lane.put(lambda: self._hash_batch(batch))
        self._write_lane.put(lambda: self._file.write(batch))

    def _hash_batch(self, batch: list[Chunk]) -> None:
        for chunk in batch:
            self._hash.update(chunk)

    async def flush(self) -> None:
        """Hash and write what was appended."""
        if self._batch:
            await self._hand_off()
        await self._hash_lane.wait_for(self._batches)
        await self._write_lane.wait_for(self._batches)

    @property
    def sha256(self) -> str:
        """The hash of what was written (after `flush`)."""
        return self._hash.hexdigest()

    async def commit(self) -> str:
        """Make the blob durable and visible under its hash; returns the hash."""
        await self.flush()
        sha = self.sha256
        self._open = False

        def finish() -> None:
            try:
                fd = self._file.finish()
            except BaseException:
                self._file.discard()
                raise
            try:
                self._place(fd, self.temp, sha)  # closes fd
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    self.temp.unlink()
                raise

        try:
            await self._write_lane.wait_for(self._write_lane.put(finish, always=True))
        finally:
            self._close_lanes()
        return sha

    async def abort(self) -> None:
        """Drop the upload: batches not started are dropped, and the temp file goes once a
        write in progress is done (the write lane takes the removal after it). Returns when
        it is gone, even when the caller is cancelled meanwhile."""
        if not self._open:
            return
        self._open = False
        self._batch = []
        for lane in (self._hash_lane, self._write_lane):
            lane.drop()
        removal = self._write_lane.put(self._file.discard, always=True)
        self._close_lanes()
        with contextlib.suppress(BaseException):  # a failed write's error is not news here
            await asyncio.shield(self._write_lane.wait_for(removal))

    def _close_lanes(self) -> None:
        self._hash_lane.close()
        self._write_lane.close()
