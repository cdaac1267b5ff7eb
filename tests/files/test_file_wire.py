"""The FileService's chunk messages framed by hand (kodosumi/file_wire.py): the same bytes
as protobuf's (or read as them), and a reader that takes exactly one chunk field or
nothing, whatever it is given."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kodosumi.file_wire import download_chunk, upload_chunk, upload_chunk_of
from kodosumi.v1 import file_pb2

SIZES = [0, 1, 127, 128, 16383, 16384, 256 * 1024]


@pytest.mark.parametrize("size", SIZES)
def test_frames_are_what_protobuf_makes(size: int) -> None:
    data = os.urandom(size)
    framed = upload_chunk(data)
    assert framed == file_pb2.UploadFileRequest(chunk=data).SerializeToString()
    assert file_pb2.UploadFileRequest.FromString(framed).chunk == data
    view = upload_chunk_of(framed)
    assert view is not None and view.tobytes() == data
    response = file_pb2.DownloadFileResponse.FromString(download_chunk(size + 1, data))
    assert (response.offset, response.chunk) == (size + 1, data)


def test_other_messages_are_left_to_protobuf() -> None:
    header = file_pb2.UploadFileRequest(header=file_pb2.UploadFileHeader(name="a", size=1))
    trailer = file_pb2.UploadFileRequest(trailer=file_pb2.UploadFileTrailer(sha256="0" * 64))
    for message in (header, trailer):
        assert upload_chunk_of(message.SerializeToString()) is None
    with_extra = upload_chunk(b"abc") + b"\x78\x01"  # an unknown field after the chunk
    assert upload_chunk_of(with_extra) is None
    for bad in (b"", b"\x12", b"\x12\x05ab", b"\x12" + b"\xff" * 11, b"\x12\x80"):
        assert upload_chunk_of(bad) is None


@settings(max_examples=300, database=None, derandomize=True)
@given(st.binary(max_size=64))
def test_any_bytes_give_a_whole_chunk_or_nothing(raw: bytes) -> None:
    view = upload_chunk_of(raw)
    if view is not None:
        assert file_pb2.UploadFileRequest.FromString(raw).chunk == view.tobytes()
