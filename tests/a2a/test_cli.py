"""`koco a2a card` and `koco a2a send` against a real node."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner, Result

from kodoclient.cli import main
from tests.node.conftest import RunningNode


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_card_prints_and_verifies(a2a_node: RunningNode) -> None:
    result = await koco(a2a_node, "a2a", "card")
    assert result.exit_code == 0, result.output
    assert "signature: valid, signed by spiffe://local.kodosumi/node/test-node" in result.output
    assert "skill hello" in result.output
    flow = await koco(a2a_node, "--json", "a2a", "card", "--flow", "hello")
    data = json.loads(flow.output)
    assert data["signature"]["valid"]
    assert data["card"]["supportedInterfaces"][0]["tenant"] == "hello"
    assert a2a_node.app.a2a_http is not None
    url = f"http://127.0.0.1:{a2a_node.app.a2a_http.port}"
    web = await koco(a2a_node, "a2a", "card", "--url", url, "--flow", "hello")
    assert web.exit_code == 0, web.output
    assert "signature: valid" in web.output


async def test_send_streams_and_answers(a2a_node: RunningNode) -> None:
    result = await koco(a2a_node, "a2a", "send", "--flow", "hello", "ada")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("task ") and lines[0].endswith("TASK_STATE_SUBMITTED")
    assert "artifact result: hello ada" in result.output
    assert lines[-1] == "TASK_STATE_COMPLETED"
    asked = await koco(a2a_node, "--json", "a2a", "send", "--flow", "asks")
    assert asked.exit_code == 13, asked.output
    task_id = json.loads(asked.output.splitlines()[0])["task"]["id"]
    answered = await koco(a2a_node, "a2a", "send", "--flow", "asks", "--task", task_id, "-i", "n=4")
    assert answered.exit_code == 0, answered.output
    blocking = await koco(a2a_node, "a2a", "send", "--no-stream", "--flow", "hello", "bo")
    assert blocking.exit_code == 0 and "hello bo" in blocking.output
    bad = await koco(a2a_node, "a2a", "send", "--flow", "emit-many", "-i", "count=-1")
    assert bad.exit_code == 2, bad.output
    assert "INVALID_PARAMS" in bad.output
