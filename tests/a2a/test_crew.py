"""A CrewAI crew (offline LLM) through A2A: its agent and task steps are status updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a

from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from kodosumid.config import PoolConfig
from tests.a2a.conftest import bootstrap_card
from tests.a2a.helpers import collect, data_message, send_request
from tests.node.conftest import RunningNode, node_config


@pytest.fixture(scope="module")
async def crew_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    config = node_config(tmp_path_factory.mktemp("a2a-crew"), node_id="a2a-crew")
    preload = PoolConfig().preload_modules
    app = NodeApp(
        replace(config, flows=example_flows(), pool=replace(config.pool, preload_modules=preload))
    )
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


async def test_crew_steps_arrive_as_working_status_updates(crew_node: RunningNode) -> None:
    assert crew_node.app.client_files is not None
    material = crew_node.app.client_files.read()
    config = ClientConfig(
        grpc_channel_factory=lambda url: open_channel(
            url, material, expect=ServerExpectation.node()
        ),
        supported_protocol_bindings=["GRPC"],
    )
    client = ClientFactory(config).create(bootstrap_card(crew_node.app.address, "search"))
    try:
        items = await collect(client.send_message(send_request(data_message({"topic": "ray"}))))
    finally:
        await client.close()
    steps = [
        i.status_update.status.message.parts[0].text
        for i in items
        if i.HasField("status_update")
        and i.status_update.status.state == a2a.TASK_STATE_WORKING
        and i.status_update.status.message.parts
    ]
    assert any(s.startswith("task ") and "started" in s for s in steps), steps
    assert any(s.startswith("agent ") for s in steps), steps
    assert any(s.startswith("task ") and "completed" in s for s in steps), steps
    assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
    result = [i.artifact_update for i in items if i.HasField("artifact_update")][-1]
    assert result.artifact.artifact_id == "result" and result.artifact.parts[0].text
