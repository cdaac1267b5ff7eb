"""FileService over real gRPC + mTLS on loopback, a real node, real SQLite and blobs on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import grpc
import pytest

from kodoclient.files import send_upload
from kodosumi.rpc.status import quota_failures_of
from kodosumi.v1 import file_pb2, file_pb2_grpc
from tests.files.conftest import (
    LIMIT,
    MIB,
    OWNER_QUOTA,
    RPC_ERRORS,
    USER_MAX_FILE,
    code_of,
    details_of_error,
    files_client,
    reason_of,
)
from tests.node.conftest import RunningNode
from tests.node.helpers import eventually
from tests.node.users import User

CHUNK = 256 * 1024


def blob_root(node: RunningNode) -> Path:
    return node.app.config.state_dir / "files"


def content(size: int, seed: int = 0) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


@pytest.mark.parametrize("size", [0, 1, 5 * MIB, LIMIT], ids=["0B", "1B", "5MiB", "limit"])
async def test_round_trip(files_node: RunningNode, size: int) -> None:
    data = content(size, seed=size)
    files = files_client(files_node)
    info = await files.upload(data, name="data.bin")
    assert info.size == size
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.media_type == "application/octet-stream"
    assert await files.read(info.file_id) == data
    stat_info = await files.stat(info.file_id)
    assert (stat_info.size, stat_info.sha256, stat_info.name) == (size, info.sha256, "data.bin")
    blob = blob_root(files_node) / "blobs" / info.sha256[:2] / info.sha256
    assert blob.read_bytes() == data
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600
    # The same bytes again: the same file.
    assert (await files.upload(data, name="data.bin")).file_id == info.file_id


async def test_one_byte_over_the_limit_is_file_too_large(files_node: RunningNode) -> None:
    with pytest.raises(RPC_ERRORS) as caught:
        await files_client(files_node).upload(content(LIMIT + 1), name="big.bin")
    assert code_of(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(caught.value) == "FILE_TOO_LARGE"
    assert "header.size" in details_of_error(caught.value)


async def _raw_upload(
    node: RunningNode,
    header: file_pb2.UploadFileHeader,
    chunks: list[bytes],
    party: User | None = None,
) -> file_pb2.UploadFileResponse:
    def requests() -> Iterator[file_pb2.UploadFileRequest]:
        yield file_pb2.UploadFileRequest(header=header)
        for chunk in chunks:
            yield file_pb2.UploadFileRequest(chunk=chunk)

    channel = files_client(party or node)._upload_channel()
    return await asyncio.to_thread(send_upload, channel, requests())


def _leftovers(node: RunningNode) -> list[Path]:
    return list((blob_root(node) / "tmp").iterdir())


async def _leftover_count(node: RunningNode) -> int:
    return len(_leftovers(node))


async def test_a_corrupted_chunk_is_refused_and_nothing_is_kept(files_node: RunningNode) -> None:
    data = content(3 * CHUNK + 5, seed=7)
    sha = hashlib.sha256(data).hexdigest()
    bad = bytearray(data)
    bad[CHUNK + 3] ^= 0xFF
    chunks = [bytes(bad[i : i + CHUNK]) for i in range(0, len(bad), CHUNK)]
    header = file_pb2.UploadFileHeader(name="x.bin", size=len(data), sha256=sha)
    with pytest.raises(RPC_ERRORS) as caught:
        await _raw_upload(files_node, header, chunks)
    assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(caught.value) == "FILE_HASH_MISMATCH"
    assert not (blob_root(files_node) / "blobs" / sha[:2] / sha).exists()
    assert _leftovers(files_node) == []


@pytest.mark.parametrize(
    ("header", "chunks", "field"),
    [
        (file_pb2.UploadFileHeader(name="", size=1, sha256="0" * 64), [b"x"], "header.name"),
        (file_pb2.UploadFileHeader(name="a/b", size=1, sha256="0" * 64), [b"x"], "header.name"),
        (file_pb2.UploadFileHeader(name="..", size=1, sha256="0" * 64), [b"x"], "header.name"),
        (file_pb2.UploadFileHeader(name="a", size=1, sha256="xyz"), [b"x"], "header.sha256"),
        (
            file_pb2.UploadFileHeader(name="a", size=CHUNK + 1, sha256="0" * 64),
            [b"x" * (CHUNK + 1)],
            "chunk",
        ),
        (file_pb2.UploadFileHeader(name="a", size=1, sha256="0" * 64), [b"xy"], "header.size"),
        (file_pb2.UploadFileHeader(name="a", size=3, sha256="0" * 64), [b"xy"], "header.size"),
    ],
)
async def test_bad_uploads_name_the_field(
    files_node: RunningNode, header: file_pb2.UploadFileHeader, chunks: list[bytes], field: str
) -> None:
    with pytest.raises(RPC_ERRORS) as caught:
        await _raw_upload(files_node, header, chunks)
    assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details_of_error(caught.value)
    assert _leftovers(files_node) == []


def _stream(
    header: file_pb2.UploadFileHeader, chunks: list[bytes], *tail: file_pb2.UploadFileRequest
) -> list[file_pb2.UploadFileRequest | bytes]:
    return [
        file_pb2.UploadFileRequest(header=header),
        *(file_pb2.UploadFileRequest(chunk=c) for c in chunks),
        *tail,
    ]


def _trailer(sha: str) -> file_pb2.UploadFileRequest:
    return file_pb2.UploadFileRequest(trailer=file_pb2.UploadFileTrailer(sha256=sha))


async def _send(
    node: RunningNode, requests: list[file_pb2.UploadFileRequest | bytes]
) -> file_pb2.UploadFileResponse:
    channel = files_client(node)._upload_channel()
    return await asyncio.to_thread(send_upload, channel, iter(requests))


async def test_the_sha256_may_come_last_in_a_trailer(files_node: RunningNode) -> None:
    data = content(2 * CHUNK + 3, seed=41)
    sha = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    header = file_pb2.UploadFileHeader(name="t.bin", size=len(data))
    info = (await _send(files_node, _stream(header, chunks, _trailer(sha)))).file
    assert (info.sha256, info.size) == (sha, len(data))
    assert await files_client(files_node).read(info.file_id) == data
    # A chunk message protobuf-framed with an unknown field beside the chunk is still read.
    odd = file_pb2.UploadFileRequest(chunk=b"odd").SerializeToString() + b"\x78\x01"
    header = file_pb2.UploadFileHeader(name="odd.bin", size=3)
    requests = [file_pb2.UploadFileRequest(header=header), odd, _trailer(_sha(b"odd"))]
    info = (await _send(files_node, requests)).file
    assert await files_client(files_node).read(info.file_id) == b"odd"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("tail", "reason", "field"),
    [
        ((), "", "header.sha256"),  # no SHA-256 at all
        ((_trailer(_sha(b"other")),), "FILE_HASH_MISMATCH", "trailer.sha256"),
        ((_trailer("nothex"),), "", "trailer.sha256"),
        ((_trailer(_sha(b"abc")), file_pb2.UploadFileRequest(chunk=b"d")), "", "trailer"),
        ((_trailer(_sha(b"abc")), _trailer(_sha(b"abc"))), "", "trailer"),
    ],
    ids=["none", "mismatch", "not-hex", "chunk-after", "twice"],
)
async def test_bad_trailers_name_the_field(
    files_node: RunningNode,
    tail: tuple[file_pb2.UploadFileRequest, ...],
    reason: str,
    field: str,
) -> None:
    header = file_pb2.UploadFileHeader(name="t.bin", size=3)
    with pytest.raises(RPC_ERRORS) as caught:
        await _send(files_node, _stream(header, [b"abc"], *tail))
    assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert field in details_of_error(caught.value)
    if reason:
        assert reason_of(caught.value) == reason
    assert _leftovers(files_node) == []


async def test_a_stream_without_a_header_is_invalid(files_node: RunningNode) -> None:
    async def requests() -> AsyncIterator[file_pb2.UploadFileRequest]:
        yield file_pb2.UploadFileRequest(chunk=b"abc")

    stub = file_pb2_grpc.FileServiceStub(files_node.channel)
    with pytest.raises(RPC_ERRORS) as caught:
        await stub.UploadFile(requests(), timeout=10)
    assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "header" in details_of_error(caught.value)


async def _is(count: Awaitable[int], expected: int) -> bool:
    return await count == expected


async def test_an_upload_cut_in_the_middle_leaves_nothing_visible(
    files_node: RunningNode,
) -> None:
    data = content(4 * MIB, seed=11)
    sha = hashlib.sha256(data).hexdigest()
    half_sent = asyncio.Event()

    async def requests() -> AsyncIterator[file_pb2.UploadFileRequest]:
        yield file_pb2.UploadFileRequest(
            header=file_pb2.UploadFileHeader(name="cut.bin", size=len(data), sha256=sha)
        )
        for start in range(0, 2 * MIB, CHUNK):
            yield file_pb2.UploadFileRequest(chunk=data[start : start + CHUNK])
        half_sent.set()
        await asyncio.Event().wait()  # the client goes away with the rest unsent

    stub = file_pb2_grpc.FileServiceStub(files_node.channel)
    call = stub.UploadFile(requests())
    await asyncio.wait_for(half_sent.wait(), 30)
    await eventually(lambda: _is(_leftover_count(files_node), 1), timeout=30)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: _is(_leftover_count(files_node), 0), timeout=30)
    assert not (blob_root(files_node) / "blobs" / sha[:2] / sha).exists()


async def test_download_resumes_from_an_offset(files_node: RunningNode, tmp_path: Path) -> None:
    data = content(2 * MIB + 17, seed=3)
    files = files_client(files_node)
    info = await files.upload(data, name="resume.bin")
    stub = file_pb2_grpc.FileServiceStub(files_node.channel)
    for offset in (0, 1, CHUNK, len(data) - 1, len(data)):
        got = b""
        request = file_pb2.DownloadFileRequest(file_id=info.file_id, offset=offset)
        responses = [r async for r in stub.DownloadFile(request)]
        assert responses[0].file.sha256 == info.sha256
        assert all(not r.HasField("file") for r in responses[1:])
        for r in responses:
            assert r.offset == offset + len(got)
            got += r.chunk
        assert got == data[offset:]
    # The SDK picks up a `.part` left by an interrupted download.
    dest = tmp_path / "resume.bin"
    (tmp_path / "resume.bin.part").write_bytes(data[: MIB + 5])
    seen: list[int] = []
    await files.download(info.file_id, dest, progress=lambda done, total: seen.append(done))
    assert dest.read_bytes() == data
    assert seen[0] > MIB + 5 and seen[-1] == len(data)
    assert not (tmp_path / "resume.bin.part").exists()
    # An offset past the end names the field.
    with pytest.raises(RPC_ERRORS) as caught:
        request = file_pb2.DownloadFileRequest(file_id=info.file_id, offset=len(data) + 1)
        [r async for r in stub.DownloadFile(request)]
    assert code_of(caught.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert "offset" in details_of_error(caught.value)


async def test_another_users_file_is_not_found(files_node: RunningNode) -> None:
    ann, bob = User(files_node, "ann-files"), User(files_node, "bob-files")
    try:
        info = await files_client(ann).upload(b"ann's secret", name="secret.txt")
        assert info.owner == str(ann.identity)
        assert info.media_type == "text/plain"
        bobs = files_client(bob)
        for call in (bobs.stat, bobs.read, bobs.delete):
            with pytest.raises(RPC_ERRORS) as caught:
                await call(info.file_id)
            assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND
            assert reason_of(caught.value) == "FILE_NOT_FOUND"
        # The same bytes uploaded by bob are bob's own file, with another id.
        own = await bobs.upload(b"ann's secret", name="mine.txt")
        assert own.file_id != info.file_id and own.owner == str(bob.identity)
        # Deleting his copy leaves ann's bytes alone.
        await bobs.delete(own.file_id)
        assert await files_client(ann).read(info.file_id) == b"ann's secret"
        # The node's operator (an admin) may read it.
        assert await files_client(files_node).read(info.file_id) == b"ann's secret"
        # Listing another user's execution's files is refused like the execution itself.
        with pytest.raises(RPC_ERRORS) as caught:
            await bobs.list("0" * 32)
        assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND
    finally:
        await ann.close()
        await bob.close()


async def test_file_bytes_is_a_quota_per_identity(files_node: RunningNode) -> None:
    carol = User(files_node, "carol-files")
    try:
        files = files_client(carol)
        for seed in range(OWNER_QUOTA // USER_MAX_FILE - 1):
            await files.upload(content(USER_MAX_FILE, seed=21 + seed), name=f"{seed}.bin")
        await files.upload(content(2 * MIB, seed=29), name="half.bin")
        held = OWNER_QUOTA - USER_MAX_FILE + 2 * MIB
        over = content(OWNER_QUOTA - held + 1, seed=23)
        with pytest.raises(RPC_ERRORS) as caught:
            await files.upload(over, name="c.bin")
        assert code_of(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(caught.value) == "QUOTA_FILE_BYTES"
        assert "file_bytes" in details_of_error(caught.value)
        # On the wire: a QuotaFailure naming the quota and its limit.
        header = file_pb2.UploadFileHeader(
            name="c.bin", size=len(over), sha256=hashlib.sha256(over).hexdigest()
        )
        with pytest.raises(grpc.RpcError) as raw:
            await _raw_upload(files_node, header, [over[:CHUNK]], party=carol)
        assert quota_failures_of(raw.value) == [("file_bytes", OWNER_QUOTA)]
        # Exactly what is left fits.
        await files.upload(content(OWNER_QUOTA - held, seed=24), name="d.bin")
    finally:
        await carol.close()


async def test_file_quotas_follow_roles(files_node: RunningNode) -> None:
    """`[quotas] max_file_bytes` holds a user; `[quotas.roles.operator]` lifts it for an
    operator, up to the node's own cap (`[files] max_file_bytes`) that holds everyone."""
    dave, olga = User(files_node, "dave-files"), User(files_node, "olga-files")
    try:
        big = content(USER_MAX_FILE + 1, seed=31)
        with pytest.raises(RPC_ERRORS) as caught:
            await files_client(dave).upload(big, name="big.bin")
        assert code_of(caught.value) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(caught.value) == "QUOTA_MAX_FILE_BYTES"
        assert "header.size" in details_of_error(caught.value)
        assert _leftovers(files_node) == []
        assert (await files_client(olga).upload(big, name="big.bin")).size == len(big)
        with pytest.raises(RPC_ERRORS) as caught:
            await files_client(olga).upload(content(LIMIT + 1, seed=32), name="huge.bin")
        assert reason_of(caught.value) == "FILE_TOO_LARGE"
        # The operator's file_bytes is twice the users': more than a user's fits.
        operators = files_client(olga)
        for seed in range(OWNER_QUOTA // LIMIT + 1):
            await operators.upload(content(LIMIT, seed=40 + seed), name=f"{seed}.bin")
    finally:
        await dave.close()
        await olga.close()


async def test_delete_removes_the_blob_when_nobody_else_holds_it(files_node: RunningNode) -> None:
    files = files_client(files_node)
    info = await files.upload(content(1000, seed=99), name="gone.bin")
    blob = blob_root(files_node) / "blobs" / info.sha256[:2] / info.sha256
    assert blob.exists()
    await files.delete(info.file_id)
    assert not blob.exists()
    with pytest.raises(RPC_ERRORS) as caught:
        await files.stat(info.file_id)
    assert code_of(caught.value) == grpc.StatusCode.NOT_FOUND


async def test_state_is_private(files_node: RunningNode) -> None:
    root = blob_root(files_node)
    for folder in (root, root / "blobs", root / "tmp"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE((root / "files.sqlite").stat().st_mode) == 0o600
