"""The FileService's chunk messages framed by hand, and an upload's request stream.

A chunk message (`UploadFileRequest.chunk`, `DownloadFileResponse{offset, chunk}`) is a few
bytes of tag and length before the chunk. Built here, it costs one copy of the chunk, where
building a message and serializing it costs two; read here (`upload_chunk_of`), it costs
none: the chunk is a view of the bytes gRPC received. Anything that is not exactly one
chunk field goes through protobuf as usual.

`upload_requests` is the one way this project sends a file (the SDK, an executor's
`ctx.save_file`, the bench): the header, the chunks as they are read, and the content's
SHA-256 in a trailer, hashed on the way, so a file is read once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from kodosumi.streams.frames import varint
from kodosumi.v1 import file_pb2

# The most a chunk may carry (the node refuses larger ones).
CHUNK_BYTES = 256 * 1024
UPLOAD_METHOD = "/kodosumi.v1.FileService/UploadFile"
# UploadFileRequest.chunk: field 2, length-delimited.
_UPLOAD_CHUNK_TAG = 0x12
_MAX_VARINT_BYTES = 10

# Called with (bytes sent, bytes in all) as an upload goes on.
Progress = Callable[[int, int], None]


def upload_chunk(chunk: bytes | memoryview) -> bytes:
    """A serialized `UploadFileRequest{chunk}`."""
    return b"".join((b"\x12", varint(len(chunk)), chunk))


def download_chunk(offset: int, chunk: bytes | memoryview) -> bytes:
    """A serialized `DownloadFileResponse{offset, chunk}`."""
    return b"".join((b"\x10", varint(offset), b"\x1a", varint(len(chunk)), chunk))


def upload_chunk_of(raw: bytes) -> memoryview | None:
    """The chunk of a serialized `UploadFileRequest` that holds one chunk and nothing else,
    as a view of `raw`; None for any other message (parse it with protobuf)."""
    if not raw or raw[0] != _UPLOAD_CHUNK_TAG:
        return None
    size = shift = 0
    for pos in range(1, min(len(raw), 1 + _MAX_VARINT_BYTES)):
        byte = raw[pos]
        size |= (byte & 0x7F) << shift
        if byte < 0x80:
            start = pos + 1
            return memoryview(raw)[start:] if start + size == len(raw) else None
        shift += 7
    return None


def encode_upload_request(message: file_pb2.UploadFileRequest | bytes) -> bytes:
    """The request serializer of uploads: framed chunks pass as they are."""
    if type(message) is bytes:
        return message
    return message.SerializeToString()  # type: ignore[union-attr]


def _read_chunks(source: Path | bytes, size: int) -> Iterator[bytes | memoryview]:
    if isinstance(source, bytes):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]
        return
    with open(source, "rb", buffering=0) as f:
        # Exactly the declared size: a file that grows meanwhile is sent as it was measured
        # (one that shrinks arrives short, and the node refuses it).
        left = size
        while left > 0 and (chunk := f.read(min(CHUNK_BYTES, left))):
            left -= len(chunk)
            yield chunk


def upload_requests(
    header: file_pb2.UploadFileHeader,
    source: Path | bytes,
    progress: Progress | None = None,
) -> Iterator[file_pb2.UploadFileRequest | bytes]:
    """The request stream of one upload of `header.size` bytes of `source`. Without a
    `header.sha256` the content is hashed as it is sent and the SHA-256 goes last, in a
    trailer. Runs in gRPC's sending thread: hashlib releases the
    GIL, so hashing overlaps the transport."""
    yield file_pb2.UploadFileRequest(header=header)
    hasher = None if header.sha256 else hashlib.sha256()
    done = 0
    for chunk in _read_chunks(source, header.size):
        if hasher is not None:
            hasher.update(chunk)
        yield upload_chunk(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, header.size)
    if hasher is not None:
        trailer = file_pb2.UploadFileTrailer(sha256=hasher.hexdigest())
        yield file_pb2.UploadFileRequest(trailer=trailer)


def send_upload(
    channel: grpc.Channel,
    requests: Iterator[file_pb2.UploadFileRequest | bytes],
    timeout: float | None = None,
) -> file_pb2.UploadFileResponse:
    """The upload stream on a blocking channel (run it in a thread). A node that refuses
    early (a size, a quota) ends the call while chunks are on their way; the blocking client
    reports its status, the asyncio one an INTERNAL error instead (grpc/grpc#36066)."""
    call = channel.stream_unary(
        UPLOAD_METHOD,
        request_serializer=encode_upload_request,
        response_deserializer=file_pb2.UploadFileResponse.FromString,
    )
    return call(requests, timeout=timeout)  # type: ignore[no-any-return]
