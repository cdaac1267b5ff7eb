"""A2A file parts on the node's file store (docs/files.md): inline file parts (`raw`) of a
message become input files of the task's execution (`ctx.files[filename]`); output files
(`ctx.save_file`) become artifact parts naming the file (`url`, `filename`, `media_type`).
No gRPC here."""

from __future__ import annotations

from typing import Protocol

from a2a.types import a2a_pb2 as a2a

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument
from kodosumi.v1 import event_pb2
from kodosumid.a2a.errors import ContentTypeNotSupported, InvalidParams

# The URL of a file in an artifact part: its node and id (fetch it with FileService).
FILE_URL = "kodosumi-file://{node_id}/{file_id}"


class FileStorePort(Protocol):
    """What A2A needs of the file store (`kodosumid.files.service.Files`)."""

    async def store_bytes(
        self, principal: Principal, name: str, data: bytes, media_type: str = ""
    ) -> str:
        """Store `data` as a file of `principal`; its id."""
        ...


def split_file_parts(message: a2a.Message) -> tuple[a2a.Message, list[tuple[int, a2a.Part]]]:
    """The message without its file parts, and those parts with their index."""
    files = [(i, p) for i, p in enumerate(message.parts) if p.WhichOneof("content") == "raw"]
    if not files:
        return message, []
    rest = a2a.Message()
    rest.CopyFrom(message)
    del rest.parts[:]
    rest.parts.extend(p for p in message.parts if p.WhichOneof("content") != "raw")
    return rest, files


async def store_file_parts(
    store: FileStorePort | None, principal: Principal, parts: list[tuple[int, a2a.Part]]
) -> dict[str, str]:
    """Each file part as a file of the caller: filename (else `file<index>`) -> file id."""
    if not parts:
        return {}
    if store is None:
        raise ContentTypeNotSupported("file parts are not accepted: this node keeps no files")
    files: dict[str, str] = {}
    for index, part in parts:
        name = part.filename or f"file{index}"
        if name in files:
            raise InvalidParams.field(f"message.parts[{index}].filename", f"{name!r} twice")
        try:
            files[name] = await store.store_bytes(principal, name, part.raw, part.media_type)
        except InvalidArgument as e:
            raise InvalidParams.field(f"message.parts[{index}].filename", e.message) from None
    return files


def file_part(artifact: event_pb2.Artifact, node_id: str) -> a2a.Part:
    """An output file as an artifact part: where it is, what it is; not its bytes."""
    part = a2a.Part(
        url=FILE_URL.format(node_id=artifact.node_id or node_id, file_id=artifact.file_id),
        filename=artifact.name,
        media_type=artifact.media_type,
    )
    part.metadata["file_id"] = artifact.file_id
    part.metadata["sha256"] = artifact.sha256
    part.metadata["size"] = artifact.total_size
    return part
