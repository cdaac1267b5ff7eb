"""The file store of a running node: opened under its state directory, purged in the
background, told when executions are deleted (`app.py` calls these)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kodosumid.files.access import Records, SpeaksFor
from kodosumid.files.blobs import BlobStore
from kodosumid.files.model import FilesConfig
from kodosumid.files.service import Files
from kodosumid.files.sqlite_store import SqliteFileStore
from kodosumid.quotas import Quotas

log = logging.getLogger(__name__)


async def open_files(
    state_dir: Path,
    config: FilesConfig,
    *,
    node_id: str,
    records: Records,
    speaks_for: SpeaksFor,
    quotas: Quotas | None = None,
    synchronous: str = "NORMAL",
) -> Files:
    """`<state>/files/files.sqlite` (metadata) and `<state>/files/blobs/` (content)."""
    root = state_dir / "files"
    blobs = BlobStore(root)
    await asyncio.to_thread(blobs.open)
    store = SqliteFileStore(root / "files.sqlite", synchronous=synchronous)
    await store.open()
    return Files(
        store,
        blobs,
        config,
        node_id=node_id,
        records=records,
        speaks_for=speaks_for,
        quotas=quotas,
    )


async def keep_purging(files: Files) -> None:
    """Background task: remove unused files whose time to live is over."""
    pause = max(files.config.purge_interval_seconds, 0.1)
    while True:
        try:
            if removed := await files.purge():
                log.info("files: purged %d expired files", removed)
        except Exception:
            log.exception("file purge failed")
        await asyncio.sleep(pause)
