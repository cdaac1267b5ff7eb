"""A node with small file limits (so that "exactly the limit" is cheap), over mTLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kodoclient.errors import KodoclientError
from kodoclient.files import FilesClient
from kodosumi.rpc.channel import open_sync_channel
from kodosumi.server_identity import ServerExpectation
from kodosumid.app import NodeApp
from kodosumid.config import FlowEntry
from kodosumid.files import FilesConfig
from tests.node.conftest import (  # noqa: F401  (fixtures)
    TEST_FLOWS,
    RunningNode,
    node_config,
    ray_cluster,
    start_node,
)
from tests.node.users import User

FILE_FLOWS = (
    *TEST_FLOWS,
    FlowEntry("summarize-file", "flows.documents:summarize_file"),
    FlowEntry("file-echo", "tests.flowlib:file_echo"),
    FlowEntry("file-crew", "tests.engine_crew.kodo_crew_cases:file_crew"),
)
MIB = 1024 * 1024
LIMIT = 6 * MIB
OWNER_QUOTA = 16 * MIB


@pytest.fixture(scope="module")
async def files_node(
    ray_cluster: None,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningNode]:
    files = FilesConfig(max_file_bytes=LIMIT, stored_bytes_per_owner=OWNER_QUOTA)
    app = NodeApp(node_config(tmp_path_factory.mktemp("files-node"), files=files, flows=FILE_FLOWS))
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


# What a failed call raises: the SDK's error, or gRPC's for calls on a stub.
RPC_ERRORS = (grpc.RpcError, KodoclientError)


def code_of(error: Any) -> grpc.StatusCode:
    return error.code if isinstance(error, KodoclientError) else error.code()


def details_of_error(error: Any) -> str:
    return error.message if isinstance(error, KodoclientError) else (error.details() or "")


def reason_of(error: Any) -> str:
    if isinstance(error, KodoclientError):
        return error.reason
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info.reason
    return ""


def files_client(party: RunningNode | User) -> FilesClient:
    """The SDK's file calls for the node's admin or a user (uploads on a blocking channel)."""
    if isinstance(party, RunningNode):
        assert party.app.client_files is not None
        tls, address, channel = party.app.client_files.read(), party.app.address, party.channel
    else:
        tls, address, channel = party.tls, party.address, party.channel
    key = (address, tls.cert)
    if key not in _SYNC:
        _SYNC[key] = open_sync_channel(address, tls, expect=ServerExpectation.node())
    sync = _SYNC[key]
    return FilesClient(channel, upload_channel=lambda: sync)


_SYNC: dict[tuple[str, bytes], grpc.Channel] = {}
