"""Time to live and retention of files, in the domain (no gRPC, an injected clock)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from kodosumi.authz import USER, Principal
from kodosumi.clock import ManualClock
from kodosumi.spiffe import SpiffeId
from kodosumid.event_store import ExecutionRecord
from kodosumid.files import BlobStore, FilesConfig, MemoryFileStore
from kodosumid.files.service import Files, InputFile, UploadHeader

ANN = Principal(SpiffeId.user("t", "ann"), frozenset({USER}))


async def _records(execution_id: str) -> ExecutionRecord | None:
    return None


def _files(tmp_path: Path, clock: ManualClock) -> Files:
    blobs = BlobStore(tmp_path / "files")
    blobs.open()
    return Files(
        MemoryFileStore(),
        blobs,
        FilesConfig(ttl_seconds=60),
        node_id="n",
        records=_records,
        speaks_for=lambda principal, record: False,
        clock=clock,
    )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _upload(files: Files, data: bytes, name: str = "a.txt") -> InputFile:
    header = UploadHeader(name, len(data), hashlib.sha256(data).hexdigest())
    record, _ = await files.upload(ANN, header, _chunks(data))
    return InputFile(name, record.file_id, record.sha256, record.size, record.media_type)


async def test_an_unused_file_is_purged_after_its_time_to_live(tmp_path: Path) -> None:
    clock = ManualClock()
    files = _files(tmp_path, clock)
    kept = await _upload(files, b"used by a run")
    gone = await _upload(files, b"never used")
    await files.link_inputs("e1", [kept])
    clock.advance(59)
    assert await files.purge() == 0
    clock.advance(2)
    assert await files.purge() == 1
    assert await files.store.get(gone.file_id) is None
    assert not files.blobs.exists(gone.sha256)
    assert await files.store.get(kept.file_id) is not None


async def test_files_go_with_the_executions_retention_deletes(tmp_path: Path) -> None:
    clock = ManualClock()
    files = _files(tmp_path, clock)
    shared = await _upload(files, b"input of two runs")
    only = await _upload(files, b"input of one run")
    await files.link_inputs("e1", [shared, only])
    await files.link_inputs("e2", [shared])
    assert await files.executions_deleted(["e1"]) == 1
    assert await files.store.get(only.file_id) is None
    assert not files.blobs.exists(only.sha256)
    assert files.blobs.exists(shared.sha256)
    assert await files.executions_deleted(["e2"]) == 1
    assert not files.blobs.exists(shared.sha256)


async def test_temp_files_of_a_crashed_upload_are_removed_at_start(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "files")
    blobs.open()
    writer = blobs.writer()
    await writer.append(b"half")
    await writer.flush()
    # The process dies here: the temp file stays until the next start.
    assert list(blobs.tmp_dir.iterdir()) == [writer.temp]
    BlobStore(tmp_path / "files").open()
    assert list(blobs.tmp_dir.iterdir()) == []
    await writer.abort()
