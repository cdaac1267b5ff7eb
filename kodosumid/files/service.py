"""`Files`: the domain of the node's file store. No gRPC: plain objects in, catalog errors out.

Uploads are checked as they arrive: the declared size against the node's limit and the
owner's file quotas (`kodosumid/quotas.py`: its largest file, and its files' bytes, held
for the upload's duration so parallel uploads cannot overshoot), every chunk against the
chunk limit and the declared size, and at the end the SHA-256 the node computed against the
declared one. Only then does the blob become visible and the record stored. Memory is a few
MiB per upload or download, whatever the file's size (`blob_writer.py`, `blob_reader.py`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kodosumi.authz import Principal, Principals, default_principal
from kodosumi.clock import Clock, SystemClock
from kodosumi.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from kodosumi.spiffe import InvalidSpiffeId
from kodosumid.executions.launch_files import InputFileLike
from kodosumid.executions.relay import peer_of
from kodosumid.files.access import FileAccess, Records, SpeaksFor, grantee_of, node_grantee
from kodosumid.files.blob_writer import Chunk
from kodosumid.files.blobs import BlobStore, is_sha256
from kodosumid.files.model import (
    CHUNK_BYTES,
    INPUT,
    OUTPUT,
    Direction,
    FileLink,
    FileRecord,
    FilesConfig,
    file_id_for,
)
from kodosumid.files.peer_pull import PeerSource, pull_inputs
from kodosumid.files.store import FileStore
from kodosumid.quotas import Quotas, QuotasConfig

log = logging.getLogger(__name__)

DEFAULT_MEDIA_TYPE = "application/octet-stream"
MAX_NAME_CHARS = 255
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_name(name: str, field: str = "header.name") -> str:
    """A file name a flow can open and a client can save under: no folders, no controls."""
    if not name:
        raise InvalidArgument.field(field, "required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument.field(field, f"at most {MAX_NAME_CHARS} characters")
    if name in (".", "..") or _BAD_NAME.search(name):
        raise InvalidArgument.field(field, "a plain file name (no '/', '\\' or control characters)")
    return name


@dataclass(frozen=True, slots=True)
class UploadHeader:
    name: str
    size: int
    sha256: str
    media_type: str = ""
    # An output of this execution (from its executor); empty for a client's upload.
    execution_id: str = ""


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file given to a launch, as the executor needs it."""

    name: str
    file_id: str
    sha256: str
    size: int
    media_type: str
    # The name it was uploaded under.
    file_name: str = ""

    def to_dict(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "file_id": self.file_id,
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "file_name": self.file_name,
        }


def _check_hash(computed: str, declared: str, trailed: str) -> None:
    """The content's SHA-256 against the header's and the trailer's (at least one)."""
    if not (declared or trailed):
        raise InvalidArgument.field(
            "header.sha256", "required (in the header, or in a trailer as the last message)"
        )
    for field, sha in (("header.sha256", declared), ("trailer.sha256", trailed)):
        if sha and sha != computed:
            raise InvalidArgument(
                f"{field}: the content's SHA-256 is {computed}", reason="FILE_HASH_MISMATCH"
            )


class Files:
    def __init__(
        self,
        store: FileStore,
        blobs: BlobStore,
        config: FilesConfig,
        *,
        node_id: str,
        records: Records,
        speaks_for: SpeaksFor,
        clock: Clock | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.config = config
        self.node_id = node_id
        self.clock: Clock = clock or SystemClock()
        self.access = FileAccess(store, records, speaks_for)
        # This node's own identity, and the files of its peers (forwarded launches' inputs).
        self.identity = ""
        self.peers: PeerSource | None = None
        # Per-identity file quotas (`[quotas] file_bytes`, `max_file_bytes`), and the roles
        # and groups of an owner who is not the caller (`Authenticator.principal_of`).
        self.quotas = quotas or Quotas(QuotasConfig())
        self.principals: Principals = default_principal

    # -- upload -------------------------------------------------------------------------------

    def check_header(self, header: UploadHeader) -> None:
        check_name(header.name)
        if header.size < 0:
            raise InvalidArgument.field("header.size", "not negative")
        if header.sha256 and not is_sha256(header.sha256):
            raise InvalidArgument.field(
                "header.sha256", "64 lower-case hex digits (or empty, and a trailer with them)"
            )
        if len(header.media_type) > MAX_NAME_CHARS:
            raise InvalidArgument.field("header.media_type", f"at most {MAX_NAME_CHARS} characters")
        limit = self.config.max_file_bytes
        if limit and header.size > limit:
            raise ResourceExhausted(
                f"header.size: {header.size} bytes is over the node's limit of {limit} bytes",
                reason="FILE_TOO_LARGE",
                metadata={"limit": str(limit)},
            )

    async def payer(self, principal: Principal, owner: str) -> Principal:
        """Whose file quota `owner`'s files spend: the caller's own, or `owner` with the
        roles and groups it would have on a call (an output's execution owner, the user a
        peer forwarded a launch for)."""
        if owner == principal.id:
            return principal
        try:
            return await self.principals(owner)
        except InvalidSpiffeId:
            return principal  # an --insecure node: nobody has an identity

    async def upload(
        self,
        principal: Principal,
        header: UploadHeader,
        chunks: AsyncIterator[Chunk],
        trailer: Callable[[], str] = str,
    ) -> tuple[FileRecord, FileLink | None]:
        """Store the content of `chunks`; the file (and, for an output, its link).
        `trailer`: the SHA-256 the stream ended with, once `chunks` is done ("" for none)."""
        self.check_header(header)
        owner, execution_id = principal.id, header.execution_id
        if execution_id:
            owner = (await self.access.output_of(principal, execution_id)).owner
        payer = await self.payer(principal, owner)
        ticket = await self.quotas.admit_file(payer, header.size, self.store.stored_bytes)
        try:
            writer = self.blobs.writer()
            try:
                async for chunk in chunks:
                    if len(chunk) > CHUNK_BYTES:
                        raise InvalidArgument.field(
                            "chunk", f"at most {CHUNK_BYTES} bytes per chunk"
                        )
                    if writer.size + len(chunk) > header.size:
                        raise InvalidArgument(
                            f"header.size: more than the {header.size} bytes declared arrived",
                            reason="FILE_SIZE_MISMATCH",
                        )
                    await writer.append(chunk)
                await writer.flush()
                if writer.size != header.size:
                    raise InvalidArgument(
                        f"header.size: {header.size} bytes declared, {writer.size} arrived",
                        reason="FILE_SIZE_MISMATCH",
                    )
                _check_hash(writer.sha256, header.sha256, trailer())
                sha = await writer.commit()
            except BaseException:
                await writer.abort()
                raise
            now = self.clock.now_ns()
            record = await self.store.put(
                FileRecord(
                    file_id=file_id_for(owner, sha),
                    owner=owner,
                    name=header.name,
                    media_type=header.media_type or DEFAULT_MEDIA_TYPE,
                    size=header.size,
                    sha256=sha,
                    create_ns=now,
                    expire_ns=now + int(self.config.ttl_seconds * 1e9),
                )
            )
        finally:
            ticket.release()  # stored (the store counts it now) or failed
        link = None
        if execution_id:
            link = FileLink(record.file_id, execution_id, OUTPUT, header.name)
            await self.store.link(link)
        return record, link

    async def store_bytes(
        self, principal: Principal, name: str, data: bytes, media_type: str = ""
    ) -> str:
        """Store bytes held in memory (an A2A file part) as a file of `principal`; its id."""
        header = UploadHeader(name, len(data), hashlib.sha256(data).hexdigest(), media_type)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK_BYTES):
                yield data[start : start + CHUNK_BYTES]

        record, _ = await self.upload(principal, header, chunks())
        return record.file_id

    # -- read ---------------------------------------------------------------------------------

    async def stat(self, principal: Principal, file_id: str) -> FileRecord:
        return await self.access.readable(principal, file_id)

    async def download(
        self, principal: Principal, file_id: str, offset: int
    ) -> tuple[FileRecord, AsyncIterator[memoryview]]:
        """The file and its content from `offset` on, in chunks (views, each valid until the
        next is asked for)."""
        record = await self.access.readable(principal, file_id)
        if offset < 0 or offset > record.size:
            raise InvalidArgument.field("offset", f"from 0 to the file's size ({record.size})")
        if not self.blobs.exists(record.sha256):
            log.error("file %s: blob %s is missing", file_id, record.sha256)
            raise FailedPrecondition(f"the content of file {file_id} is gone", reason="FILE_LOST")
        return record, self.blobs.read(record.sha256, offset, CHUNK_BYTES)

    async def list_files(
        self, principal: Principal, execution_id: str, direction: Direction | None = None
    ) -> list[tuple[FileLink, FileRecord]]:
        await self.access.execution(principal, execution_id)
        return await self.store.files_of(execution_id, direction)

    async def relayed(self, principal: Principal, execution_id: str) -> str:
        """The peer that runs an execution this node forwarded ('' for a local one)."""
        record = await self.access.execution(principal, execution_id)
        return peer_of(record.executor)

    # -- launches -----------------------------------------------------------------------------

    async def resolve_inputs(
        self, principal: Principal, files: dict[str, str], forwarded_for: str = ""
    ) -> list[InputFile]:
        """The files a launch names (name -> file id), each readable by the caller. A peer
        forwarding a launch names its own files: they are pulled from it first, as files of
        the identity the launch is for (`forwarded_for`), which pay for them here."""
        for name in files:
            check_name(name, f"files.{name}")
        node_id = grantee_of(principal).removeprefix("node/")
        records: dict[str, FileRecord] = {}
        if node_id and principal.id != self.identity and self.peers is not None:
            records = await pull_inputs(self, self.peers, principal, node_id, files, forwarded_for)
        else:
            for name, file_id in files.items():
                try:
                    records[name] = await self.access.readable(principal, file_id)
                except NotFound as e:  # which of the launch's files, as docs/files.md says
                    raise NotFound(f"files.{name}: {e.message}", reason=e.reason) from None
        return [
            InputFile(name, r.file_id, r.sha256, r.size, r.media_type, r.name)
            for name, r in sorted(records.items())
        ]

    async def link_inputs(self, execution_id: str, files: Sequence[InputFileLike]) -> None:
        for f in files:
            await self.store.link(FileLink(f.file_id, execution_id, INPUT, f.name))

    async def inputs_of(self, execution_id: str) -> list[dict[str, Any]]:
        """The input files of an execution, as its executor gets them (`engine.files`)."""
        return [
            InputFile(link.name, r.file_id, r.sha256, r.size, r.media_type, r.name).to_dict()
            for link, r in await self.store.files_of(execution_id, INPUT)
        ]

    async def grant_node(self, file_ids: Sequence[str], node_id: str) -> None:
        for file_id in file_ids:
            await self.store.grant(file_id, node_grantee(node_id))

    # -- removal ------------------------------------------------------------------------------

    async def delete(self, principal: Principal, file_id: str) -> None:
        await self.access.owned(principal, file_id)
        if await self.store.links_of(file_id):
            raise FailedPrecondition(
                f"file {file_id} belongs to an execution; it goes when the execution is deleted",
                reason="FILE_IN_USE",
            )
        await self._remove(file_id)

    async def _remove(self, file_id: str) -> None:
        record = await self.store.delete(file_id)
        if record is not None and not await self.store.sha_in_use(record.sha256):
            self.blobs.delete(record.sha256)

    async def executions_deleted(self, execution_ids: Sequence[str]) -> int:
        """Files go with the executions that used them (retention, DeleteExecution)."""
        orphans = await self.store.unlink_executions(execution_ids)
        for file_id in orphans:
            await self._remove(file_id)
        return len(orphans)

    async def purge(self) -> int:
        """Remove files no execution uses whose time to live is over."""
        removed = 0
        while expired := await self.store.expired(self.clock.now_ns()):
            for file_id in expired:
                await self._remove(file_id)
            removed += len(expired)
        return removed
