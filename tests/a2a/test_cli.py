"""`koco a2a card` and `koco a2a send` against a real node."""

from __future__ import annotations

import asyncio
import json

from a2a.types import a2a_pb2 as a2a
from click.testing import CliRunner, Result

from kodoclient.cli import main
from tests.node.conftest import REPO, RunningNode


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


async def test_the_ten_line_example_of_the_docs_runs(a2a_node: RunningNode) -> None:
    """docs/a2a.md's a2a-sdk example, as written, against this node."""
    text = (REPO / "docs" / "a2a.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"127.0.0.1:7470"', repr(a2a_node.app.address))
    body = "async def example(state_dir, print):\n" + "".join(
        f"    {line}\n" for line in code.splitlines()
    )
    scope: dict[str, object] = {}
    exec(compile(body, "docs/a2a.md", "exec"), scope)
    printed: list[object] = []
    await scope["example"](a2a_node.app.config.state_dir, printed.append)  # type: ignore[operator]
    assert printed[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED  # type: ignore[attr-defined]
