"""A node with small file limits and file quotas (so that "exactly the limit" is cheap),
over mTLS."""

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
from kodosumid.quotas import quotas_config
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
# The node's cap on any file ([files] max_file_bytes).
LIMIT = 6 * MIB
# File quotas per identity ([quotas] file_bytes, max_file_bytes), and an operator's.
OWNER_QUOTA = 16 * MIB
USER_MAX_FILE = 4 * MIB
OPERATOR = "olga-files"
FILE_QUOTAS = quotas_config(
    {
        "file_bytes": OWNER_QUOTA,
        "max_file_bytes": USER_MAX_FILE,
        "roles": {"operator": {"file_bytes": 2 * OWNER_QUOTA, "max_file_bytes": 0}},
    }
)


@pytest.fixture(scope="module")
async def files_node(
    ray_cluster: None,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningNode]:
    config = node_config(
        tmp_path_factory.mktemp("files-node"),
        files=FilesConfig(max_file_bytes=LIMIT),
        quotas=FILE_QUOTAS,
        operators=(OPERATOR,),
        flows=FILE_FLOWS,
    )
    app = NodeApp(config)
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
