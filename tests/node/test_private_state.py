"""A node's state directory is 0700 and every database it keeps is 0600 (issue 11, item 5):
they hold every user's inputs and results and the node's keys."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.node.conftest import NodeFactory
from tests.node.helpers import collect, launch

pytestmark = pytest.mark.ray


async def test_the_state_directory_and_databases_are_private(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as an earlier version left it
    node = await start_node(state_dir=state)
    await collect(node.flows, await launch(node.flows, "hello", {"name": "private"}))
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    databases = [p for p in state.rglob("*") if ".sqlite" in p.name]
    assert {p.name for p in databases} >= {"events.sqlite", "events.sqlite-wal", "alerts.sqlite"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in databases} == {
        p.name: 0o600 for p in databases
    }
