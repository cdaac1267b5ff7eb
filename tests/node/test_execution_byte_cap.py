"""The byte cap of a local execution: a flow writing events forever cannot fill the node's
disk. Past `[peers] max_execution_bytes` nothing more of it is stored, its run is cancelled
and the execution ends FAILED naming the limit; the node keeps serving."""

from __future__ import annotations

from dataclasses import replace

from kodosumi.v1 import event_pb2, flow_pb2
from kodosumid.config import FlowEntry, PeersConfig
from tests.node.conftest import TEST_FLOWS, NodeFactory
from tests.node.helpers import collect, launch, statuses

S = event_pb2
CAP = 1024 * 1024
FLOWS = (*TEST_FLOWS, FlowEntry(name="emit-bytes", entrypoint="tests.flowlib:emit_bytes"))


async def test_a_flow_writing_past_the_cap_is_failed(start_node: NodeFactory) -> None:
    node = await start_node(flows=FLOWS, peers=replace(PeersConfig(), max_execution_bytes=CAP))
    # 64 KiB events, far more than the cap: about 16 fit.
    execution_id = await launch(node.flows, "emit-bytes", {"count": 100_000, "size": 64 * 1024})
    events = await collect(node.flows, execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    execution = (
        await node.flows.GetExecution(
            flow_pb2.GetExecutionRequest(execution_id=execution_id), timeout=10
        )
    ).execution
    reason = execution.status_reason
    assert "EXECUTION_TOO_LARGE" in reason and str(CAP) in reason, reason
    assert "peers.max_execution_bytes" in reason, reason
    store = node.app.store
    assert store is not None
    stored, after = 0, 0
    while rows := await store.read_events(execution_id, after):
        stored, after = stored + sum(len(data) for _, data in rows), rows[-1][0]
    assert stored <= CAP + 4096  # the cap, and the node's own FAILED event
    # (The batch that would pass the cap is refused whole: what fits before it is stored.)
    # The node keeps serving: a later run succeeds.
    hello = await collect(node.flows, await launch(node.flows, "hello", {"name": "cap"}))
    assert statuses(hello)[-1] == S.EXECUTION_STATUS_SUCCEEDED
