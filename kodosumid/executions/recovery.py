"""Recovery after a node restart: take up again what the previous run left open.

An execution whose executor survived (`ExecutorPool.survivors`: an external Ray cluster
keeps detached executors alive) is re-attached and drained from its last stored `seq`; a
relayed one resumes its relay; one accepted but never visibly started starts now; every
other one ends `FAILED` with the reason, so nothing ends silently.
"""

from __future__ import annotations

import logging

from kodosumi.errors import KodosumiError
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry, NodeConfig
from kodosumid.event_store import EventStore, ExecutionRecord
from kodosumid.executions.dispatch import Dispatcher
from kodosumid.executions.drain import Drainer
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.relay import Relayer, peer_of
from kodosumid.executors.placement import stored_placement
from kodosumid.executors.port import ANYWHERE, ExecutorPool, Placement
from kodosumid.observability.run_trace import resumed_trace

log = logging.getLogger(__name__)


def launch_placement(record: ExecutionRecord) -> Placement:
    """Where the launch asked to run (over its flow's placement), as stored with it."""
    try:
        return stored_placement(record.placement)
    except KodosumiError as e:
        # Not the user's fault and not worth failing the execution: the flow's placement.
        log.warning("execution %s: %s; using its flow's placement", record.execution_id, e)
        return ANYWHERE


def flow_or_placeholder(catalog: Catalog, record: ExecutionRecord) -> FlowEntry:
    """The execution's flow, or a stand-in when the catalog no longer offers it."""
    try:
        return catalog.get(record.flow)
    except KodosumiError:
        return FlowEntry(name=record.flow, entrypoint="")


async def recover(
    *,
    config: NodeConfig,
    catalog: Catalog,
    store: EventStore,
    pool: ExecutorPool,
    live_table: LiveTable,
    drainer: Drainer,
    dispatcher: Dispatcher,
    relayer: Relayer | None,
) -> None:
    """Re-attach to executions whose executor survived, close the rest."""
    # Executors that outlived the node (external cluster) and still host executions.
    survivors = {e.name: e for e in await pool.survivors()}
    for record in await store.unfinished():
        flow = flow_or_placeholder(catalog, record)
        live = LiveExecution(
            record,
            flow,
            stored_seq=record.last_seq,
            status=record.status,
            placement=launch_placement(record),
        )
        live.traceparent = resumed_trace(record.trace_id).traceparent
        live.groups = await store.groups_of(record.execution_id)
        live_table.add(live)
        live.peer = peer_of(record.executor)
        if live.peer and relayer is not None:
            live_table.spawn(relayer.follow(live))  # the peer may still run it: resume the relay
            continue
        executor = survivors.get(record.executor)
        if executor is not None and record.execution_id in executor.executions:
            live.executor, live.started = executor, True
            continue
        accepted_seq = 3 if record.parent_execution_id else 2  # the node's launch events
        if record.status == event_pb2.EXECUTION_STATUS_PENDING and record.last_seq == accepted_seq:
            # Accepted but no engine event stored: it never visibly started, so it
            # starts now instead of failing.
            live_table.spawn(dispatcher.dispatch(live))
            continue
        reason = (
            "the node restarted and the embedded Ray stopped with it"
            if config.ray.embedded
            else "the node restarted and the execution's executor is gone"
        )
        await drainer.end_by_node(live, event_pb2.EXECUTION_STATUS_FAILED, reason)
    for executor in survivors.values():
        executor.executions.intersection_update(live_table)
        if executor.executions:
            drainer.ensure(executor)
        else:
            pool.release(executor, "")  # nothing left to resume: it retires
