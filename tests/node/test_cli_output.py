"""Issue 17's "Messages and output" items, with the real `koco` against a real node (gRPC +
mTLS, Ray, SQLite), as a script sees it (stdout and stderr are not terminals): tracebacks
only with -v, each schema violation once, tables at full width off a terminal, integers
as integers in --json, how to answer an input request under --json, the first `top` frame
with the stored alerts, and CrewAI's agent_logs_* events folded into the step lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import main
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from tests.node.conftest import TEST_FLOWS, RunningNode, node_config
from tests.node.helpers import collect, eventually, launch

SEARCH = tuple(f for f in example_flows() if f.name == "search")
KOCO = (sys.executable, "-m", "kodoclient")


@pytest.fixture(scope="module")
async def output_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    app = NodeApp(
        node_config(
            tmp_path_factory.mktemp("output-node"),
            node_id="output-node",
            flows=TEST_FLOWS + SEARCH,
        )
    )
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_tracebacks_only_with_verbose(output_node: RunningNode) -> None:
    plain = await koco(output_node, "run", "fails")
    assert plain.exit_code == 10
    assert "ValueError: this flow always fails" in plain.stderr
    assert "Traceback" not in plain.output
    verbose = await koco(output_node, "-v", "run", "fails")
    assert verbose.exit_code == 10
    assert "Traceback (most recent call last)" in verbose.output
    # The last line says how it ended, on one line however long the reason.
    summary = plain.stdout.splitlines()[-1]
    assert summary.startswith("✖ FAILED") and summary.rstrip().endswith(" s")


async def test_each_schema_violation_is_printed_once(output_node: RunningNode) -> None:
    bad = await koco(output_node, "run", "hello", "-i", "name=", "-i", "extra=x")
    assert bad.exit_code == 2
    assert bad.stderr.count("inputs.name") == 1
    # Unknown inputs are named by their own path (issue 17, inputs from signatures).
    assert bad.stderr.count("inputs.extra: unknown") == 1
    assert "error: INVALID_ARGUMENT/INVALID_INPUTS: inputs do not match" in bad.stderr


async def test_tables_off_a_terminal_keep_ids_and_dates_on_one_line(
    output_node: RunningNode,
) -> None:
    execution_id = await launch(output_node.flows, "async-hello")
    await collect(output_node.flows, execution_id)
    listing = await koco(output_node, "ls", "--flow", "async-hello")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    row = next(line for line in lines if line.startswith(execution_id))
    # The whole row on one line: id, flow, status, date and time, owner.
    assert "async-hello" in row and "SUCCEEDED" in row
    assert len(row.split()) >= 6 and row.split()[3].count("-") == 2  # YYYY-MM-DD HH:MM:SS
    assert all(line == line.rstrip() for line in lines)
    flows = await koco(output_node, "flows")
    entry = next(line for line in flows.stdout.splitlines() if line.startswith("async-hello"))
    assert "tests.flowlib:async_hello" in entry


async def test_integers_stay_integers_in_json(output_node: RunningNode) -> None:
    ran = await koco(output_node, "--json", "run", "emit-many", "-i", "count=3")
    assert ran.exit_code == 0, ran.output
    records = [json.loads(line) for line in ran.stdout.splitlines()]
    inputs = next(r["inputs_received"]["inputs"] for r in records if "inputs_received" in r)
    assert inputs == {"count": 3} and isinstance(inputs["count"], int)
    status = await koco(output_node, "--json", "status", records[0]["execution_id"])
    assert '"count":3}' in status.stdout.replace(" ", "")


async def test_json_mode_says_how_to_answer_an_input_request(output_node: RunningNode) -> None:
    # The real `koco` in a process of its own (CliRunner swaps sys.stderr for every
    # invocation, so two at once would mix their output).
    run = await asyncio.create_subprocess_exec(
        *KOCO,
        "--node",
        output_node.app.address,
        "--state-dir",
        str(output_node.app.config.state_dir),
        "--json",
        "run",
        "asks",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert run.stderr is not None and run.stdout is not None
    try:
        try:
            async with asyncio.timeout(120):  # the first launch may wait for an executor
                line = await run.stderr.readline()  # said while the run waits
        except TimeoutError:
            run.kill()
            out, err = await run.communicate()
            raise AssertionError(
                f"no hint: {out.decode()[-1500:]} / {err.decode()[-1500:]}"
            ) from None
        hint = json.loads(line)["input_requested"]
        assert hint["answer_with"] == (
            f"koco input {hint['execution_id']} --request-id {hint['request_id']} VALUE"
        )
        answer = [*hint["answer_with"].split()[1:-1], '{"n": 7}']
        answered = await koco(output_node, *answer)
        assert answered.exit_code == 0, answered.output
        try:
            async with asyncio.timeout(180):  # a loaded machine resumes the run slowly
                out, _ = await run.communicate()
        except TimeoutError:
            run.kill()
            out, err = await run.communicate()
            raise AssertionError(
                f"run did not end: {out.decode()[-1500:]} / {err.decode()[-1500:]}"
            ) from None
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    assert run.returncode == 0
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert records[-1]["status_changed"]["status"] == "EXECUTION_STATUS_SUCCEEDED"


async def test_the_first_top_frame_shows_the_stored_alerts(output_node: RunningNode) -> None:
    failed = await launch(output_node.flows, "fails")
    await collect(output_node.flows, failed)

    async def alerted() -> bool:
        return failed in (await koco(output_node, "alerts")).stdout

    await eventually(alerted, timeout=30)
    # The real `koco top` in batch mode (stdout is a pipe): frames one after another, the
    # next one 30 s later; the first must already list the alert.
    top = await asyncio.create_subprocess_exec(
        *KOCO,
        "--node",
        output_node.app.address,
        "--state-dir",
        str(output_node.app.config.state_dir),
        "top",
        "--interval",
        "30",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert top.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(20):
            while b"ALERTS" not in seen.upper() or failed.encode() not in seen:
                chunk = await top.stdout.read(4096)
                if not chunk:
                    break
                seen += chunk
    except TimeoutError:
        pass
    finally:
        top.kill()
        await top.wait()
    assert failed.encode() in seen, seen.decode()[-2000:]


async def test_crewai_agent_logs_are_folded_into_step_lines(output_node: RunningNode) -> None:
    plain = await koco(output_node, "run", "search", "-i", "topic=folding")
    assert plain.exit_code == 0, plain.output
    assert "agent_logs" not in plain.output
    assert "▶ agent Researcher" in plain.output
    verbose = await koco(output_node, "-v", "run", "search", "-i", "topic=folding")
    assert "agent_logs_execution" in verbose.output
