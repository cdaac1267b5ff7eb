"""A download whose connection breaks in the middle resumes from where it stopped, in the
same SDK call, and the file it writes checks out (a TCP proxy cuts the link)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kodoclient.files import FilesClient
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from tests.files.conftest import files_client
from tests.node.conftest import RunningNode
from tests.peers.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.ray]
MIB = 1024 * 1024


async def test_a_cut_connection_resumes_the_download(
    files_node: RunningNode, tmp_path: Path
) -> None:
    data = os.urandom(5 * MIB)
    info = await files_client(files_node).upload(data, name="cut.bin")
    proxy = TcpProxy()
    await proxy.start()
    proxy.target_port = files_node.app.port
    assert files_node.app.client_files is not None
    channel = open_channel(
        proxy.address, files_node.app.client_files.read(), expect=ServerExpectation.node()
    )
    files = FilesClient(channel, upload_channel=lambda: None)  # type: ignore[arg-type,return-value]
    seen: list[int] = []
    offsets: list[int] = []
    original = files._download_from

    async def spied(file_id: str, part: Path, offset: int, *rest: object) -> object:
        offsets.append(offset)
        return await original(file_id, part, offset, *rest)  # type: ignore[arg-type]

    files._download_from = spied  # type: ignore[method-assign,assignment]

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 3:
            proxy.cut()  # the link breaks after the third chunk

    try:
        dest = tmp_path / "cut.bin"
        await files.download(info.file_id, dest, progress=progress)
        assert dest.read_bytes() == data
        # The first stream broke; the next one started where the .part file ended.
        assert len(offsets) >= 2 and offsets[0] == 0 and 0 < offsets[1] < len(data), offsets
        assert seen[-1] == len(data)
        assert not (tmp_path / "cut.bin.part").exists()
    finally:
        await channel.close()
        await proxy.stop()
