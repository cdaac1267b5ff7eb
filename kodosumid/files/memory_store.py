"""A `FileStore` in memory: for domain tests; the same contract as the SQLite one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kodosumid.files.model import INPUT, Direction, FileLink, FileRecord


class MemoryFileStore:
    def __init__(self) -> None:
        self._files: dict[str, FileRecord] = {}
        self._links: dict[tuple[str, str, str, str], FileLink] = {}
        self._grants: set[tuple[str, str]] = set()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def put(self, record: FileRecord) -> FileRecord:
        known = self._files.get(record.file_id)
        if known is not None:
            record = replace(known, expire_ns=max(known.expire_ns, record.expire_ns))
        self._files[record.file_id] = record
        return record

    async def get(self, file_id: str) -> FileRecord | None:
        return self._files.get(file_id)

    async def delete(self, file_id: str) -> FileRecord | None:
        record = self._files.pop(file_id, None)
        for key in [k for k in self._links if k[0] == file_id]:
            del self._links[key]
        self._grants = {g for g in self._grants if g[0] != file_id}
        return record

    async def link(self, link: FileLink) -> None:
        if link.file_id in self._files:
            key = (link.file_id, link.execution_id, link.direction, link.name)
            self._links[key] = link

    async def links_of(self, file_id: str) -> list[FileLink]:
        return sorted(
            (v for k, v in self._links.items() if k[0] == file_id),
            key=lambda v: (v.execution_id, v.direction, v.name),
        )

    async def files_of(
        self, execution_id: str, direction: Direction | None = None
    ) -> list[tuple[FileLink, FileRecord]]:
        found = [
            (link, self._files[link.file_id])
            for link in self._links.values()
            if link.execution_id == execution_id
            and (direction is None or link.direction == direction)
        ]
        return sorted(found, key=lambda p: (p[0].direction != INPUT, p[0].name, p[0].file_id))

    async def unlink_executions(self, execution_ids: Sequence[str]) -> list[str]:
        gone = set(execution_ids)
        touched = {k[0] for k in self._links if k[1] in gone}
        for key in [k for k in self._links if k[1] in gone]:
            del self._links[key]
        still = {k[0] for k in self._links}
        return sorted(touched - still)

    async def expired(self, now_ns: int, limit: int = 500) -> list[str]:
        used = {k[0] for k in self._links}
        found = sorted(
            (r.expire_ns, r.file_id)
            for r in self._files.values()
            if r.expire_ns <= now_ns and r.file_id not in used
        )
        return [file_id for _, file_id in found[:limit]]

    async def stored_bytes(self, owner: str) -> int:
        return sum(r.size for r in self._files.values() if r.owner == owner)

    async def sha_in_use(self, sha256: str) -> bool:
        return any(r.sha256 == sha256 for r in self._files.values())

    async def grant(self, file_id: str, grantee: str) -> None:
        if file_id in self._files:
            self._grants.add((file_id, grantee))

    async def granted(self, file_id: str, grantee: str) -> bool:
        return (file_id, grantee) in self._grants
