"""Fixtures that start real nodes: embedded-mode Ray (one per session), mTLS on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.v1 import flow_pb2_grpc, node_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.config import DiscoveryConfig, FlowEntry, NodeConfig, PoolConfig
from kodosumid.executors.ray_runtime import start_ray, stop_ray

REPO = Path(__file__).resolve().parents[2]

TEST_FLOWS = (
    FlowEntry(
        "hello",
        "tests.flowlib:hello",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "additionalProperties": False,
        },
        tags=("demo",),
    ),
    FlowEntry(
        "emit-many",
        "tests.flowlib:emit_many",
        input_schema={
            "type": "object",
            "properties": {"count": {"type": "integer", "minimum": 0}},
            "required": ["count"],
        },
    ),
    FlowEntry("chatty", "tests.flowlib:chatty"),
    FlowEntry("async-hello", "tests.flowlib:async_hello"),
    FlowEntry("counting", "tests.flowlib:counting"),
    FlowEntry("fails", "tests.flowlib:fails"),
    FlowEntry("sleepy", "tests.flowlib:sleepy"),
    FlowEntry("sleepy-isolated", "tests.flowlib:sleepy", isolation="process"),
    FlowEntry("stubborn", "tests.flowlib:stubborn"),
    FlowEntry("stubborn-isolated", "tests.flowlib:stubborn", isolation="process"),
    FlowEntry("times-out", "tests.flowlib:sleepy", timeout_seconds=0.5),
    FlowEntry("asks", "tests.flowlib:asks"),
    FlowEntry("flaky", "tests.flowlib:flaky", retry_attempts=3, retry_backoff_seconds=0.1),
    FlowEntry(
        "sleepy-retried",
        "tests.flowlib:sleepy",
        isolation="process",
        retry_attempts=2,
        retry_backoff_seconds=0.1,
    ),
    FlowEntry("asks-with-timeout", "tests.flowlib:asks_with_timeout"),
    FlowEntry("parent-calls-child", "tests.flowlib:parent_calls_child"),
    FlowEntry("parent-calls-failing", "tests.flowlib:parent_calls_failing"),
    FlowEntry("parent-calls-sleepy", "tests.flowlib:parent_calls_sleepy"),
)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One embedded Ray for the whole session (start-up costs seconds), shut down before
    pytest's summary so Ray's late messages (workers killed by tests) do not follow it."""
    start_ray(NodeConfig().ray, tmp_path_factory.mktemp("session-ray"))
    yield
    stop_ray()


def node_config(state_dir: Path, **changes: Any) -> NodeConfig:
    config = NodeConfig(
        node_id=changes.pop("node_id", "test-node"),
        listen="127.0.0.1:0",
        state_dir=state_dir,
        flows=TEST_FLOWS,
        python_path=(str(REPO),),
        pool=PoolConfig(shared_executors=1, warm_executors=1, preload_modules=()),
        # Nodes under test do not advertise on the LAN (tests/peers covers discovery).
        discovery=DiscoveryConfig(enabled=False),
        shutdown_grace_seconds=2.0,
        cancel_grace_seconds=1.0,
    )
    return replace(config, **changes)


class RunningNode:
    def __init__(self, app: NodeApp) -> None:
        self.app = app
        assert app.client_files is not None or app.config.insecure
        tls = None if app.config.insecure else app.client_files.read()  # type: ignore[union-attr]
        self.channel = open_channel(app.address, tls, expect=ServerExpectation.node())
        self.flows = flow_pb2_grpc.FlowServiceStub(self.channel)
        self.node = node_pb2_grpc.NodeServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()


NodeFactory = Callable[..., Awaitable[RunningNode]]


@pytest.fixture
async def start_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NodeFactory]:
    """Start nodes on demand (`await start_node(state_dir=..., ...)`); all stop at the end."""
    running: list[RunningNode] = []

    async def start(state_dir: Path | None = None, **changes: Any) -> RunningNode:
        state = state_dir or tmp_path_factory.mktemp("node")
        app = NodeApp(node_config(state, **changes))
        await app.start()
        node = RunningNode(app)
        running.append(node)
        return node

    yield start
    for node in running:
        await node.close()
        if node.app.store is not None and node.app.store._db is not None:
            await node.app.stop()


@pytest.fixture(scope="module")
async def shared_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    """One node for a whole test module (tests that do not stop or restart it)."""
    app = NodeApp(node_config(tmp_path_factory.mktemp("shared-node")))
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


def rpc_code(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()
