"""Blobs written and read on real files (kodosumid/files/blob_writer.py, blob_reader.py):
content and hash come out whole for sizes around the O_DIRECT block and batch edges, for
odd chunk sizes and from any offset, directly and plainly (a file system that refuses
O_DIRECT), and an aborted upload leaves nothing."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from kodosumid.files import blob_reader, blob_writer
from kodosumid.files.blob_reader import BLOCK_BYTES
from kodosumid.files.blob_writer import ALIGN, BATCH_BYTES
from kodosumid.files.blobs import BlobStore

CHUNK = 256 * 1024
SIZES = [0, 1, ALIGN - 1, ALIGN + 1, BATCH_BYTES, BATCH_BYTES + 1, 3 * BATCH_BYTES + 12345]


@pytest.fixture(params=["direct", "plain"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> BlobStore:
    if request.param == "plain":
        monkeypatch.setattr(blob_writer, "_O_DIRECT", 0)
        monkeypatch.setattr(blob_reader, "_O_DIRECT", 0)
    store = BlobStore(tmp_path / "files")
    store.open()
    return store


@pytest.mark.parametrize("size", SIZES)
async def test_content_and_hash_come_out_whole(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    writer = store.writer()
    # Odd pieces, one larger than a batch, every other one a view into a bigger buffer.
    pos, step, pieces = 0, 0, [100_000, 4097, 2 * BATCH_BYTES + 5, 1]
    while pos < size:
        piece = data[pos : pos + pieces[step % len(pieces)]]
        await writer.append(memoryview(b"x" + piece)[1:] if step % 2 else piece)
        pos, step = pos + len(piece), step + 1
    sha = await writer.commit()
    assert sha == hashlib.sha256(data).hexdigest()
    blob = store.path(sha)
    assert blob.read_bytes() == data
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    assert list(store.tmp_dir.iterdir()) == []
    for offset in sorted({0, 1, ALIGN - 1, ALIGN, BLOCK_BYTES - 1, BLOCK_BYTES, size - 1, size}):
        if 0 <= offset <= size:
            got = [bytes(chunk) async for chunk in store.read(sha, offset, CHUNK)]
            assert b"".join(got) == data[offset:]
            assert all(0 < len(chunk) <= CHUNK for chunk in got)


async def test_an_aborted_upload_leaves_nothing(store: BlobStore) -> None:
    writer = store.writer()
    for _ in range(5):
        await writer.append(os.urandom(BATCH_BYTES // 2 + 7))
    await writer.abort()
    await writer.abort()  # twice is harmless
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.blob_dir.iterdir()) == []


async def test_a_failed_write_surfaces_and_the_abort_cleans_up(store: BlobStore) -> None:
    writer = store.writer()
    write = writer._file.write

    def fail_after_one(batch: list[bytes | memoryview]) -> None:
        if writer._file.held or os.fstat(writer._file.fd).st_size:
            raise OSError(28, "No space left on device")
        write(batch)

    writer._file.write = fail_after_one  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space"):
        for _ in range(8):
            await writer.append(os.urandom(BATCH_BYTES // 2 + 4097))
        await writer.commit()
    await writer.abort()
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.blob_dir.iterdir()) == []
