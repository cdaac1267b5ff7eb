"""SubscribeToTask with memory bounded per stream: the Task first, without its artifacts,
then the stored artifacts replayed as updates a page of events at a time, then every later
update. A stream holds one page of the execution's events, never the task's artifacts, so
many subscribers that read nothing cost the node little, whatever the artifacts weigh.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from a2a.types import a2a_pb2 as a2a

from kodosumi.authz import Principal
from kodosumi.errors import KodosumiError
from kodosumid.a2a.errors import translate
from kodosumid.a2a.tasks import A2ATasks, parsed, task_response
from kodosumid.event_store import ExecutionRecord


async def subscribe(
    tasks: A2ATasks, principal: Principal, record: ExecutionRecord
) -> AsyncIterator[a2a.StreamResponse]:
    """SubscribeToTask with memory bounded per stream, whatever the task's artifacts
    weigh: the Task as of the subscription first, without its artifacts, then the stored
    artifacts replayed as artifact updates a page of events at a time, then every later
    update. Two reads of the stream (the first folds the state and keeps no artifact
    bytes); the second is one watch, so nothing falls between replay and live updates."""
    snapshot = await tasks.snapshot(principal, record, keep_artifacts=False)
    yield task_response(snapshot.task())
    fold = tasks.fold_for(record, keep_artifacts=False)
    stream = tasks.executions.watch(principal, record.execution_id, 0)
    try:
        async for batch in stream:
            events = parsed(batch)
            live = [e for e in events if e.seq > snapshot.last_seq]
            for update in fold.apply_batch(events[: len(events) - len(live)]):
                if update.HasField("artifact_update"):  # the rest is in the Task
                    yield update
            for update in fold.apply_batch(live):
                yield update
            if fold.terminal:
                return
    except KodosumiError as e:
        raise translate(e, record.execution_id) from None
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
