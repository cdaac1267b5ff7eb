"""The byte cap of a local execution counts what the store already holds: a node restarted
mid-run (its count gone) takes the count from the store again, not from zero."""

from __future__ import annotations

from kodosumi.v1 import event_pb2
from tests.executions.conftest import ANN, Domain, status_is

S = event_pb2


async def stored_bytes(domain: Domain, execution_id: str) -> int:
    stored, after = 0, 0
    while rows := await domain.store.read_events(execution_id, after):
        stored, after = stored + sum(len(data) for _, data in rows), rows[-1][0]
    return stored


async def test_the_count_is_taken_from_the_store_after_a_restart(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy", {"seconds": 1.0})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    before = await stored_bytes(domain, execution_id)
    live = domain.service.live.get(execution_id)
    assert live is not None
    # As after a restart: nothing counted in memory, and a cap a few bytes above the store.
    live.stored_bytes = None
    domain.service.drainer.max_bytes = before + 10
    events = await domain.events(execution_id)
    assert events[-1].status_changed.status == S.EXECUTION_STATUS_FAILED
    reason = events[-1].status_changed.reason
    assert "EXECUTION_TOO_LARGE" in reason and "peers.max_execution_bytes" in reason, reason
    # Nothing but the node's FAILED event was stored past the count.
    assert await stored_bytes(domain, execution_id) == before + len(events[-1].SerializeToString())
    record = await domain.service.get(ANN, execution_id)
    assert record.status == S.EXECUTION_STATUS_FAILED
