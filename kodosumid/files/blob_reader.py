"""A blob read for a download: from an offset, read ahead in a thread, in bounded memory.

A download is a loop of "read a chunk, send it". Reading on the event loop stalls every other
call for as long as the disk takes; reading through the page cache makes each MiB of a cold
blob fresh memory for the kernel (costly on this machine's VMs, see `blob_writer.py`). So
the file is read a 1 MiB block at a time with O_DIRECT (plain reads where the file system
refuses it) into one of three aligned buffers, in a thread, two blocks ahead of the one
whose chunks go out: the loop only slices views (no copies; the framing of each response is
the one copy). Memory: three blocks per download, whatever the file's size.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import errno
import fcntl
import mmap
import os
from collections.abc import AsyncIterator
from pathlib import Path

from kodosumid.files.blob_writer import ALIGN

BLOCK_BYTES = 1024 * 1024
# Blocks read ahead of the one going out: a slow read (a busy disk) does not stall the stream.
AHEAD = 2
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)


def _open(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    if _O_DIRECT:
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | _O_DIRECT)
        except OSError as e:
            if e.errno != errno.EINVAL:
                os.close(fd)
                raise
    return fd


def _read(fd: int, buffer: memoryview, offset: int) -> int:
    """Fill `buffer` from `offset` (aligned) up to the end of the file; bytes read."""
    done = 0
    while done < len(buffer):
        n = os.preadv(fd, [buffer[done:]], offset + done)
        if n == 0:
            break
        done += n
        if done % ALIGN:
            break  # the end of the file (a direct read returns whole blocks until then)
    return done


async def read_blob(path: Path, offset: int, chunk_bytes: int) -> AsyncIterator[memoryview]:
    """The file from `offset` on, in chunks of `chunk_bytes` (views: each is valid until the
    next one is asked for, and the one after a block's last may overwrite it)."""
    loop = asyncio.get_running_loop()
    lane = concurrent.futures.ThreadPoolExecutor(1, "blob-read")
    fd = await loop.run_in_executor(lane, _open, path)
    try:
        buffers = [memoryview(mmap.mmap(-1, BLOCK_BYTES)) for _ in range(AHEAD + 1)]
        position = offset - offset % ALIGN  # direct reads start on a block
        skip = offset - position
        reads: collections.deque[tuple[asyncio.Future[int], memoryview]] = collections.deque()
        for buffer in buffers[:AHEAD]:
            reads.append((loop.run_in_executor(lane, _read, fd, buffer, position), buffer))
            position += BLOCK_BYTES
        spare = buffers[AHEAD]
        while reads:
            pending, block = reads.popleft()
            got = await pending
            if got == BLOCK_BYTES:  # more may follow: read it while this block goes out
                reads.append((loop.run_in_executor(lane, _read, fd, spare, position), spare))
                position += BLOCK_BYTES
            for start in range(skip, got, chunk_bytes):
                yield block[start : min(start + chunk_bytes, got)]
            skip = 0
            if got < BLOCK_BYTES:
                return
            spare = block  # all its chunks went out
    finally:
        lane.submit(os.close, fd)  # after the reads in progress
        lane.shutdown(wait=False)
