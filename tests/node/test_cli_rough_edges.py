"""Issue 17's CLI edges, with the real `koco` against a real node (gRPC + mTLS, Ray, SQLite):
short id prefixes, `result`, `rerun`, `cancel` printing how it ended, statuses as words,
`timeline --svg` into a missing folder, a TLS/plaintext mismatch said plainly with gRPC
core's own log lines kept off stderr, and an unreachable registry's hint."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import main
from kodosumid.app import NodeApp
from tests.client.fake_node import FakeNode
from tests.node.conftest import REPO, NodeFactory, RunningNode, node_config
from tests.node.helpers import launch

# A log line of gRPC core: `I1204 19:58:33.101750   23515 ssl_transport_security.cc:…]`.
CORE_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d", re.MULTILINE)


@pytest.fixture(scope="module")
async def edge_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    """A node of this module's own (its own id: executors of other modules' nodes on the
    session's Ray are never mistaken for its own)."""
    app = NodeApp(node_config(tmp_path_factory.mktemp("edge-node"), node_id="edge-node"))
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


async def test_short_ids_result_and_rerun(edge_node: RunningNode) -> None:
    ran = await koco(edge_node, "--json", "run", "hello", "-i", "name=first")
    assert ran.exit_code == 0, ran.output
    execution_id = json.loads(ran.stdout.splitlines()[0])["execution_id"]
    assert len(execution_id) == 32
    short = execution_id[:8]

    status = await koco(edge_node, "--json", "status", short)
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["execution_id"] == execution_id

    result = await koco(edge_node, "result", short)
    assert result.exit_code == 0, result.output
    assert "hello first" in result.stdout
    assert "SUCCEEDED" in result.stderr
    as_json = json.loads((await koco(edge_node, "--json", "result", execution_id)).stdout)
    assert as_json["status"] == "SUCCEEDED" and as_json["result"]["text"] == "hello first"

    again = await koco(edge_node, "rerun", short)
    assert again.exit_code == 0, again.output
    assert "hello first" in again.stdout and f"({execution_id})" in again.stderr
    changed = await koco(edge_node, "rerun", short, "-i", "name=second", "--detach")
    assert changed.exit_code == 0, changed.output
    new_id = changed.stdout.strip()
    assert new_id != execution_id and len(new_id) == 32
    watched = await koco(edge_node, "watch", new_id[:10])
    assert watched.exit_code == 0 and "hello second" in watched.stdout

    timeline = await koco(edge_node, "timeline", short)
    assert timeline.exit_code == 0, timeline.output


async def test_result_of_a_failed_and_of_a_running_execution(edge_node: RunningNode) -> None:
    failed = await koco(edge_node, "--json", "run", "fails")
    # A run right after earlier commands' watchers hung up mid-replay: the node's store
    # reader must still see the new execution (it once kept a stale snapshot: NOT_FOUND).
    assert failed.stdout, (failed.exit_code, failed.stderr)
    failed_id = json.loads(failed.stdout.splitlines()[0])["execution_id"]
    shown = await koco(edge_node, "result", failed_id)
    assert shown.exit_code == 10
    assert "this flow always fails" in shown.stderr
    running = await launch(edge_node.flows, "sleepy", {"seconds": 60})
    early = await koco(edge_node, "result", running)
    assert early.exit_code == 6 and "koco watch" in early.stderr, early.output
    await koco(edge_node, "cancel", running, "--wait", "0")


async def test_cancel_prints_the_final_status_as_a_word(edge_node: RunningNode) -> None:
    execution_id = await launch(edge_node.flows, "sleepy", {"seconds": 120})
    cancelled = await koco(edge_node, "cancel", execution_id[:12], "--reason", "enough")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip().startswith(f"{execution_id}: CANCELLED")
    again = await koco(edge_node, "cancel", execution_id)
    assert again.exit_code == 6
    assert "(CANCELLED)" in again.stderr and "EXECUTION_STATUS_" not in again.stderr


async def test_timeline_svg_into_a_missing_folder_is_a_clean_usage_error(
    edge_node: RunningNode, tmp_path: Path
) -> None:
    execution_id = await launch(edge_node.flows, "hello", {"name": "svg"})
    result = await koco(
        edge_node, "timeline", execution_id, "--svg", str(tmp_path / "nope" / "run.svg")
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output
    written = await koco(edge_node, "timeline", execution_id, "--svg", str(tmp_path / "a.svg"))
    assert written.exit_code == 0 and (tmp_path / "a.svg").read_text().startswith("<svg")


def test_an_ambiguous_prefix_names_the_candidates_and_other_ids_stay_hidden() -> None:
    node = FakeNode()
    node.start()
    try:
        node.create("hello", execution_id="abcdef01" + "0" * 24)
        node.create("hello", execution_id="abcdef02" + "0" * 24)
        base = ["--node", node.address, "--insecure", "--timeout", "5"]
        result = CliRunner().invoke(main, [*base, "status", "abcdef"])
        assert result.exit_code == 2
        assert "ambiguous" in result.stderr
        assert "abcdef01" in result.stderr and "abcdef02" in result.stderr
        one = CliRunner().invoke(main, [*base, "--json", "status", "abcdef02"])
        assert json.loads(one.stdout)["execution_id"] == "abcdef02" + "0" * 24
        none = CliRunner().invoke(main, [*base, "status", "ffffff"])
        assert none.exit_code == 3
    finally:
        node.close()


def _koco_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process: gRPC core's log lines would land on its real stderr."""
    return subprocess.run(
        [sys.executable, "-m", "kodoclient", "--timeout", "3", *args],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_tls_and_plaintext_mismatches_are_said_plainly(
    edge_node: RunningNode, start_node: NodeFactory
) -> None:
    plain = await koco(edge_node, "--insecure", "--timeout", "3", "flows")
    assert plain.exit_code == 4
    assert "expects TLS" in plain.stderr and "--insecure" in plain.stderr
    assert "start a node" not in plain.stderr

    insecure_node = await start_node(insecure=True, node_id="plain-node")
    state = str(edge_node.app.config.state_dir)  # TLS credentials of another node
    tls = await asyncio.to_thread(
        _koco_process, "--node", insecure_node.app.address, "--state-dir", state, "flows"
    )
    assert tls.returncode == 4, tls.stderr
    assert "speaks plaintext, not TLS" in tls.stderr
    assert not CORE_LOG.search(tls.stderr), tls.stderr


async def test_an_unreachable_registry_hints_at_registryd() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["--insecure", "--timeout", "1", "nodes", "--registry", f"127.0.0.1:{port}"],
    )
    assert result.exit_code == 4
    assert "registryd" in result.stderr and "--registry" in result.stderr
    assert "kodosumid" not in result.stderr
