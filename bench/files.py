"""Files (issue 14): upload and download MB/s through the node beside a raw grpc.aio stream
of the same 256 KiB chunks, and the node's memory while it moves a 1 GiB file.

The node runs as a subprocess (`bench/fanout.toml`), the raw server too
(`bench/raw_files_server.py`, the node's certificate): both are one process each on the same
loopback with mTLS, so the ratio is what the node adds (guard, hashing, the temp file and
its fsync, SQLite; on the way out the blob read) to the transport. Client side, ours is the
SDK's upload of the file (`FilesClient.upload`: a blocking channel in a thread, the file
read once and hashed while it is sent, the SHA-256 in a trailer), the same stream with the
SHA-256 computed before the timer starts (in the header), and a DownloadFile stream read to
the end; the raw client is grpc.aio. Rounds alternate after a warm-up; medians. Targets:
the SDK's upload and the download >= 0.8 x raw. Memory: the node's RSS
peak over its RSS before, while a 1 GiB file goes up and comes down (target: bounded, well
below the file).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from bench import hermetic
from bench.fanout import CONFIG, Peak, _start, _wait_file, rss
from bench.raw_files_server import CHUNK
from bench.report import Figure, Result, Table, fmt
from kodoclient.files import FilesClient, sha256_of
from kodosumi.file_wire import send_upload, upload_requests
from kodosumi.rpc.channel import open_channel, open_sync_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial, dev_client_files, pki_dir
from kodosumi.v1 import file_pb2, file_pb2_grpc

NAME = "files"
TARGET_RATIO = 0.8
MIB = 1024 * 1024
TARGET_MEMORY_MIB = 256


def _source(size: int) -> Path:
    """A file of `size` random-ish bytes (written once, 1 MiB at a time)."""
    path = hermetic.scratch("files-src-") / f"{size}.bin"
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(size // MIB):
            f.write(block[i % 7 :] + block[: i % 7])
    return path


async def ours_upload(sync: grpc.Channel, path: Path, sha: str) -> tuple[float, str]:
    """MB/s of one upload stream whose SHA-256 is known before (in its header), and the
    file id."""
    size = os.path.getsize(path)  # noqa: ASYNC240  (outside the timed part)
    header = file_pb2.UploadFileHeader(
        name=path.name, size=size, sha256=sha, media_type="application/octet-stream"
    )
    start = time.perf_counter()
    response = await asyncio.to_thread(send_upload, sync, upload_requests(header, path))
    elapsed = time.perf_counter() - start
    return size / MIB / elapsed, response.file.file_id


async def sdk_upload(files: FilesClient, path: Path) -> tuple[float, str]:
    """MB/s of the SDK's upload of a file (read once, hashed while it is sent)."""
    start = time.perf_counter()
    info = await files.upload(path)
    elapsed = time.perf_counter() - start
    return info.size / MIB / elapsed, info.file_id


async def ours_download(channel: grpc.aio.Channel, file_id: str, size: int) -> float:
    stub = file_pb2_grpc.FileServiceStub(channel)
    got = 0
    start = time.perf_counter()
    async for response in stub.DownloadFile(file_pb2.DownloadFileRequest(file_id=file_id)):
        got += len(response.chunk)
    elapsed = time.perf_counter() - start
    if got != size:
        raise RuntimeError(f"downloaded {got} of {size} bytes")
    return size / MIB / elapsed


async def raw_upload(channel: grpc.aio.Channel, path: Path) -> float:
    async def requests() -> AsyncIterator[bytes]:
        with open(path, "rb", buffering=0) as f:  # noqa: ASYNC230  (as the SDK reads)
            while chunk := f.read(CHUNK):
                yield file_pb2.UploadFileRequest(chunk=chunk).SerializeToString()

    call = channel.stream_unary("/bench.RawFiles/Upload", lambda b: b, lambda b: b)
    start = time.perf_counter()
    await call(requests())
    elapsed = time.perf_counter() - start
    return os.path.getsize(path) / MIB / elapsed  # noqa: ASYNC240


async def raw_download(channel: grpc.aio.Channel, size: int) -> float:
    call = channel.unary_stream("/bench.RawFiles/Download", lambda b: b, lambda b: b)
    got = 0
    start = time.perf_counter()
    async for message in call((size // CHUNK).to_bytes(8, "big")):
        got += len(message)
    elapsed = time.perf_counter() - start
    if got < size:
        raise RuntimeError(f"raw download: {got} of {size} bytes")
    return size / MIB / elapsed


async def _raw_server(certs: Path) -> tuple[asyncio.subprocess.Process, str]:
    scratch = hermetic.scratch("files-raw-")
    port_file = scratch / "port"
    raw = await _start(
        ["-m", "bench.raw_files_server", str(certs), str(port_file)], scratch / "raw.log"
    )
    await _wait_file(port_file, raw)
    return raw, f"127.0.0.1:{port_file.read_text().strip()}"


async def _memory(
    pid: int, sync: grpc.Channel, channel: grpc.aio.Channel, size: int
) -> tuple[int, int, int]:
    """Node RSS before, and its peak growth while uploading and while downloading `size`."""
    path = _source(size)
    sha = await asyncio.to_thread(sha256_of, path)
    await asyncio.sleep(1.0)
    before = rss(pid)
    peak = Peak(pid)
    _, file_id = await ours_upload(sync, path, sha)
    up = peak.stop() - before
    path.unlink()
    before_down = rss(pid)
    peak = Peak(pid)
    await ours_download(channel, file_id, size)
    down = peak.stop() - before_down
    return before, up, down


async def benchmark(quick: bool) -> Result:
    size = (64 if quick else 256) * MIB
    rounds = 1 if quick else 3
    big = (256 if quick else 1024) * MIB
    state = hermetic.scratch("files-node-")
    node = await _start(
        ["-m", "kodosumid", "--config", str(CONFIG), "--state-dir", str(state),
         "--listen", "127.0.0.1:0", "--log-level", "WARNING"],
        state.parent / f"{state.name}.log",
    )  # fmt: skip
    raw: asyncio.subprocess.Process | None = None
    try:
        await _wait_file(state / "node.json", node)
        assert node.pid is not None
        address = json.loads((state / "node.json").read_text())["address"]
        tls: TlsMaterial = dev_client_files(state).read()
        expect = ServerExpectation.node()
        channel = open_channel(address, tls, expect=expect)
        sync = open_sync_channel(address, tls, expect=expect)
        raw, raw_address = await _raw_server(pki_dir(state))
        raw_channel = open_channel(raw_address, tls, expect=expect)
        path = _source(size)
        sha = await asyncio.to_thread(sha256_of, path)
        # Warm-up of both: connections, handshakes, the first blob folder.
        warm = _source(4 * MIB)
        await ours_upload(sync, warm, await asyncio.to_thread(sha256_of, warm))
        await raw_upload(raw_channel, warm)
        await raw_download(raw_channel, 4 * MIB)
        files = FilesClient(channel, upload_channel=lambda: sync)
        sdk_up, stream_up, raw_up, ours_down, raw_down = [], [], [], [], []
        file_id = ""
        for i in range(rounds):
            # The same bytes again would be the same file: each upload stores them anew.
            rate, file_id = await sdk_upload(files, path)
            sdk_up.append(rate)
            await files.delete(file_id)
            raw_up.append(await raw_upload(raw_channel, path))
            rate, file_id = await ours_upload(sync, path, sha)
            stream_up.append(rate)
            ours_down.append(await ours_download(channel, file_id, size))
            raw_down.append(await raw_download(raw_channel, size))
            if i + 1 < rounds:
                await files.delete(file_id)
        # What the SDK's download costs on top (a file written, its SHA-256 checked).
        dest = hermetic.scratch("files-dl-") / "out.bin"
        start = time.perf_counter()
        await files.download(file_id, dest)
        sdk_down = size / MIB / (time.perf_counter() - start)
        dest.unlink()
        path.unlink()
        before, up_growth, down_growth = await _memory(node.pid, sync, channel, big)
        await channel.close()
        await raw_channel.close()
        sync.close()
    finally:
        for process in (node, raw):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
    med = statistics.median
    up_ratio, down_ratio = med(sdk_up) / med(raw_up), med(ours_down) / med(raw_down)
    stream_ratio = med(stream_up) / med(raw_up)
    rows = [
        ["upload: raw grpc.aio client stream", fmt(med(raw_up)), "1.00", _each(raw_up)],
        ["upload: SDK, a file hashed while sent", fmt(med(sdk_up)), f"{up_ratio:.2f}",
         _each(sdk_up)],
        ["upload: UploadFile, SHA-256 known before", fmt(med(stream_up)), f"{stream_ratio:.2f}",
         _each(stream_up)],
        ["download: raw grpc.aio server stream", fmt(med(raw_down)), "1.00", _each(raw_down)],
        ["download: DownloadFile stream", fmt(med(ours_down)), f"{down_ratio:.2f}",
         _each(ours_down)],
        ["download: SDK to a file, SHA-256 checked", fmt(sdk_down), "-", "1"],
    ]  # fmt: skip
    transfer = Table(
        f"files: {size // MIB} MiB in 256 KiB chunks, median of {rounds} round(s), MiB/s",
        ["path", "MiB/s", "ratio", "rounds"],
        rows,
        [f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"],
    )
    memory = Table(
        f"node memory while moving one {big // MIB} MiB file",
        ["transfer", "node RSS before MiB", "peak growth MiB"],
        [
            ["upload", fmt(before / MIB), fmt(up_growth / MIB)],
            ["download", "", fmt(down_growth / MIB)],
        ],
    )
    growth = max(up_growth, down_growth) / MIB
    figures = [
        Figure(NAME, "upload MiB/s (SDK, hashed while sent)", med(sdk_up), "MiB/s",
               "raw grpc.aio", med(raw_up), f">= {TARGET_RATIO}x raw", up_ratio >= TARGET_RATIO),
        Figure(NAME, "download MiB/s (DownloadFile)", med(ours_down), "MiB/s", "raw grpc.aio",
               med(raw_down), f">= {TARGET_RATIO}x raw", down_ratio >= TARGET_RATIO),
        Figure(NAME, f"node RSS growth moving {big // MIB} MiB", growth, "MiB",
               target=f"<= {TARGET_MEMORY_MIB} MiB", met=growth <= TARGET_MEMORY_MIB),
    ]  # fmt: skip
    return Result([transfer, memory], figures)


def _each(values: list[float]) -> str:
    return " ".join(f"{v:.0f}" for v in values)
