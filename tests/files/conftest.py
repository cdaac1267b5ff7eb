"""A node with small file limits (so that "exactly the limit" is cheap), over mTLS."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kodosumid.app import NodeApp
from kodosumid.files import FilesConfig
from tests.node.conftest import RunningNode, node_config, ray_cluster  # noqa: F401

MIB = 1024 * 1024
LIMIT = 6 * MIB
OWNER_QUOTA = 16 * MIB


@pytest.fixture(scope="module")
async def files_node(
    ray_cluster: None,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningNode]:
    files = FilesConfig(max_file_bytes=LIMIT, stored_bytes_per_owner=OWNER_QUOTA)
    app = NodeApp(node_config(tmp_path_factory.mktemp("files-node"), files=files))
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


def reason_of(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info.reason
    return ""
