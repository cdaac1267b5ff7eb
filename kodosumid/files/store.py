"""The `FileStore` Protocol: metadata of stored files (the bytes are `blobs.py`'s).

Held by `memory_store.py` and `sqlite_store.py` to one contract suite
(`tests/files/test_store_contract.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kodosumid.files.model import Direction, FileLink, FileRecord


class FileStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, record: FileRecord) -> FileRecord:
        """Store a file; one already stored under its id is kept (its expiry the later of
        the two) and returned."""
        ...

    async def get(self, file_id: str) -> FileRecord | None: ...

    async def delete(self, file_id: str) -> FileRecord | None:
        """Remove a file with its links and grants; the removed record, None if none."""
        ...

    async def link(self, link: FileLink) -> None:
        """Put a file on a side of an execution (idempotent)."""
        ...

    async def links_of(self, file_id: str) -> list[FileLink]: ...

    async def files_of(
        self, execution_id: str, direction: Direction | None = None
    ) -> list[tuple[FileLink, FileRecord]]:
        """The files of an execution (one side, or both), inputs first, by name."""
        ...

    async def unlink_executions(self, execution_ids: Sequence[str]) -> list[str]:
        """Drop the links of these executions; the ids of files left with no link."""
        ...

    async def expired(self, now_ns: int, limit: int = 500) -> list[str]:
        """Ids of files no execution uses whose expiry is at or before `now_ns`."""
        ...

    async def stored_bytes(self, owner: str) -> int:
        """Bytes of all files of `owner`."""
        ...

    async def sha_in_use(self, sha256: str) -> bool:
        """Whether any file still has this content (its blob must stay)."""
        ...

    async def grant(self, file_id: str, grantee: str) -> None:
        """Let `grantee` (a peer node's SPIFFE id) read the file (forwarded launches)."""
        ...

    async def granted(self, file_id: str, grantee: str) -> bool: ...
