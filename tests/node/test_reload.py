"""`kodosumid --reload` (issue 17): a changed flow module is checked again, its new schema
published and the executors that ran the old code replaced; a module broken by an edit is
unavailable until it is fixed. Without `--reload` a node keeps serving what it loaded."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from kodosumi.jsonvalue import struct_to_dict
from kodosumi.v1 import event_pb2, flow_pb2
from kodosumid.config import FlowEntry
from tests.node.conftest import REPO, NodeFactory, RunningNode
from tests.node.helpers import collect, launch, statuses

V1 = 'def flow(name: str = "a") -> str:\n    return "v1 " + name\n'
V2 = 'def flow(name: str = "a", times: int = 1) -> str:\n    return "v2 " + name * times\n'
BROKEN = "def flow(:\n"


def edit(module: Path, text: str) -> None:
    module.write_text(text)
    # Later than any earlier write, even on a file system with coarse times.
    later = time.time() + 2 + module.stat().st_mtime - int(module.stat().st_mtime)
    os.utime(module, (later, later))


async def result_text(node: RunningNode, flow: str, inputs: dict[str, object]) -> str:
    execution_id = await launch(node.flows, flow, inputs)
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    return next(e.result.text for e in events if e.WhichOneof("kind") == "result")


async def schema_of(node: RunningNode, flow: str) -> dict[str, object]:
    response = await node.flows.GetFlow(flow_pb2.GetFlowRequest(name=flow), timeout=10)
    return struct_to_dict(response.flow.input_schema)


async def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "no reload within the deadline"
        await asyncio.sleep(0.1)


async def test_reload_replaces_changed_code_and_republishes_the_schema(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    module = tmp_path / "edit_me.py"
    module.write_text(V1)
    node = await start_node(
        node_id="reload-node",
        flows=(FlowEntry("edited", "edit_me:flow"), FlowEntry("hello", "tests.flowlib:hello")),
        python_path=(str(tmp_path), str(REPO)),
        reload=True,
    )
    assert node.app.reloader is not None
    node.app.reloader.poll_seconds = 0.1
    assert await result_text(node, "edited", {"name": "x"}) == "v1 x"
    assert "times" not in (await schema_of(node, "edited"))["properties"]  # type: ignore[operator]

    edit(module, V2)

    async def has_times() -> bool:
        return "times" in (await schema_of(node, "edited"))["properties"]  # type: ignore[operator]

    await wait_for(has_times)
    assert await result_text(node, "edited", {"name": "y", "times": 2}) == "v2 yy"

    # An edit that breaks the module: unavailable (with the error) until it is fixed.
    edit(module, BROKEN)

    async def broken() -> bool:
        response = await node.flows.GetFlow(flow_pb2.GetFlowRequest(name="edited"), timeout=10)
        return "SyntaxError" in response.flow.unavailable_reason

    await wait_for(broken)
    assert await result_text(node, "hello", {"name": "still"}) == "hello still"
    edit(module, V1)

    async def fixed() -> bool:
        response = await node.flows.GetFlow(flow_pb2.GetFlowRequest(name="edited"), timeout=10)
        return response.flow.unavailable_reason == ""

    await wait_for(fixed)
    assert await result_text(node, "edited", {"name": "z"}) == "v1 z"


async def test_without_reload_a_node_keeps_the_code_it_loaded(
    start_node: NodeFactory, tmp_path: Path
) -> None:
    module = tmp_path / "kept.py"
    module.write_text(V1)
    node = await start_node(
        node_id="steady-node",
        flows=(FlowEntry("kept", "kept:flow"),),
        python_path=(str(tmp_path), str(REPO)),
    )
    assert node.app.reloader is None
    assert await result_text(node, "kept", {"name": "x"}) == "v1 x"
    edit(module, V2)
    await asyncio.sleep(1.5)
    assert await result_text(node, "kept", {"name": "x"}) == "v1 x"
