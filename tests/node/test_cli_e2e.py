"""The `koco` CLI and the sync SDK against a real node (gRPC + mTLS, Ray, SQLite)."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner, Result

from kodoclient import Client, ConnectConfig
from kodoclient.cli import main
from kodosumi.v1 import event_pb2
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, eventually, launch, statuses


async def koco(node: RunningNode, *args: str) -> Result:
    """Run the CLI in a thread (it runs its own event loop) against `node`."""
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_run_follows_live_and_exits_zero_on_success(shared_node: RunningNode) -> None:
    result = await koco(shared_node, "run", "hello", "-i", "name=cli")
    assert result.exit_code == 0, result.output
    assert "hello cli" in result.output
    assert "SUCCEEDED" in result.output


async def test_run_exit_code_says_how_the_execution_ended(shared_node: RunningNode) -> None:
    assert (await koco(shared_node, "run", "fails")).exit_code == 10
    assert (await koco(shared_node, "run", "times-out", "-i", "seconds=30")).exit_code == 12
    bad = await koco(shared_node, "run", "hello", "-i", "name=")
    assert bad.exit_code == 2
    assert "inputs.name" in bad.output
    assert (await koco(shared_node, "run", "no-such-flow")).exit_code == 3


async def test_json_watch_prints_one_event_per_line(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "counting", {"steps": 3})
    result = await koco(shared_node, "--json", "watch", execution_id)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status_changed"]["status"] == "EXECUTION_STATUS_SUCCEEDED"


async def test_input_answers_from_another_shell(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "asks")

    async def waiting() -> bool:
        status = await koco(shared_node, "--json", "status", execution_id)
        return "EXECUTION_STATUS_AWAITING_INPUT" in status.output

    await eventually(waiting)
    wrong = await koco(shared_node, "input", execution_id, '{"n": "seven"}')
    assert wrong.exit_code == 2
    answered = await koco(shared_node, "input", execution_id, '{"n": 7}')
    assert answered.exit_code == 0, answered.output
    events = await collect(shared_node.flows, execution_id)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED


async def test_cancel_ls_and_status(shared_node: RunningNode) -> None:
    execution_id = await launch(shared_node.flows, "sleepy", {"seconds": 120})
    cancelled = await koco(shared_node, "cancel", execution_id)
    assert cancelled.exit_code == 0, cancelled.output
    events = await collect(shared_node.flows, execution_id)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_CANCELLED
    assert (await koco(shared_node, "cancel", execution_id)).exit_code == 6
    listing = await koco(shared_node, "--json", "ls", "--flow", "sleepy")
    assert execution_id in listing.output
    status = await koco(shared_node, "--json", "status", execution_id)
    assert json.loads(status.output)["status"] == "EXECUTION_STATUS_CANCELLED"


async def test_sync_client_runs_a_flow(shared_node: RunningNode) -> None:
    assert shared_node.app.client_files is not None
    config = ConnectConfig(target=shared_node.app.address, tls=shared_node.app.client_files.read())

    def run() -> list[event_pb2.Event]:
        with Client(config) as client:
            execution = client.launch("hello", {"name": "sync"})
            return list(client.watch(execution.execution_id))

    events = await asyncio.to_thread(run)
    assert next(e.result.text for e in events if e.HasField("result")) == "hello sync"
