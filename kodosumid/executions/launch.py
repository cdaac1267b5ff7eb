"""Launch: check a request, store the execution with its first events, hand it on.

A launch is accepted once the execution row (status `PENDING`) and its first events (the
status, the inputs, and for a child the link to its parent) are stored; dispatch to an
executor happens in the background. A flow this node does not offer is launched on a peer
that does (`relay.py`), unless the launch came from a peer.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from kodosumi.authz import NODE, Principal
from kodosumi.clock import Clock
from kodosumi.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.logs import bind_run
from kodosumi.schema import violations
from kodosumi.v1 import event_pb2
from kodosumid.auth.roles import check_flow_access
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry
from kodosumid.event_store import EventStore, ExecutionRecord, StatusChange
from kodosumid.executions.access import Access
from kodosumid.executions.budget import QuotePort
from kodosumid.executions.dispatch import Dispatcher
from kodosumid.executions.events import status_event
from kodosumid.executions.fanout import Batch, WatchHub
from kodosumid.executions.launch_files import LaunchFiles, resolve
from kodosumid.executions.lifecycle import ExecutionObserver
from kodosumid.executions.live import LiveExecution, LiveTable
from kodosumid.executions.relay import Relayer
from kodosumid.executors.placement import placement_json
from kodosumid.executors.port import ANYWHERE, Placement
from kodosumid.observability.run_trace import RunTrace, launch_trace


def with_defaults(schema: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Fill top-level inputs the caller left out with their schema `default`, as a form would."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return inputs
    filled = dict(inputs)
    for name, prop in properties.items():
        if name not in filled and isinstance(prop, dict) and "default" in prop:
            filled[name] = prop["default"]
    return filled


def check_inputs(flow: FlowEntry, inputs: dict[str, Any]) -> None:
    bad = violations(flow.input_schema, inputs, root="inputs")
    if bad:
        raise InvalidArgument(
            f"inputs do not match the schema of flow {flow.name!r}: "
            + "; ".join(f"{v.field}: {v.description}" for v in bad),
            violations=bad,
            reason="INVALID_INPUTS",
        )


def first_events(
    execution_id: str,
    inputs: dict[str, Any],
    run: RunTrace,
    parent: ExecutionRecord | None,
    now_ns: int,
) -> list[bytes]:
    """seq 1: PENDING, seq 2: the inputs, seq 3 for a child: the link to its parent."""
    inputs_event = event_pb2.Event(execution_id=execution_id, seq=2, attempt=1)
    inputs_event.time_unix_nano = now_ns
    inputs_event.inputs_received.inputs.SetInParent()  # set even when there are none
    dict_to_struct(inputs, inputs_event.inputs_received.inputs)
    run.stamp(inputs_event)
    first = [
        status_event(
            execution_id,
            1,
            1,
            event_pb2.EXECUTION_STATUS_PENDING,
            time_unix_nano=now_ns,
            trace_ids=run.ids,
        ),
        # Deterministic: map entries sorted by key, so the store can rebuild these bytes
        # exactly from the inputs' JSON (kodosumid/event_store/inputs_event.py).
        inputs_event.SerializeToString(deterministic=True),
    ]
    if parent is not None:
        # The link to the parent, in the child's stream (the engine starts at seq 4).
        link = event_pb2.Event(execution_id=execution_id, seq=3, attempt=1)
        link.time_unix_nano = now_ns
        link.child_execution.relation = event_pb2.CHILD_RELATION_PARENT
        link.child_execution.execution_id = parent.execution_id
        link.child_execution.flow = parent.flow
        link.child_execution.node_id = parent.node_id
        run.stamp(link)
        first.append(link.SerializeToString())
    return first


class Launcher:
    def __init__(
        self,
        *,
        node_id: str,
        catalog: Catalog,
        store: EventStore,
        hub: WatchHub,
        live: LiveTable,
        access: Access,
        dispatcher: Dispatcher,
        relayer: Relayer | None,
        observer: ExecutionObserver,
        clock: Clock,
    ) -> None:
        self.node_id = node_id
        self.clock = clock
        self.catalog = catalog
        self.store = store
        self.hub = hub
        self.live = live
        self.access = access
        self.dispatcher = dispatcher
        # None: this node does not forward launches of flows it lacks.
        self.relayer = relayer
        self.observer = observer
        # The node's file store (None: launches name no files).
        self.files: LaunchFiles | None = None
        # The node's quotes (kodosumid/market/; None: launches name no quotes).
        self.quotes: QuotePort | None = None

    async def launch(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        forwarded: bool = False,
        forwarded_for: str = "",
        parent_execution_id: str = "",
        placement: Placement = ANYWHERE,
        files: dict[str, str] | None = None,
        quote_id: str = "",
    ) -> ExecutionRecord:
        """`files`: name -> id of a file the caller may read (`ctx.files` of the flow).

        `quote_id`: a quote of this node for the caller, this flow and these inputs; the
        run is charged by it and stopped at its ceiling (kodosumid/market/).

        `forwarded`: a peer forwarded this launch here; it is never forwarded again.
        `forwarded_for`: the identity the peer launched it for: the files this node pulls
        from the peer are that identity's here, and spend its file quota.

        `parent_execution_id`: the execution (on this node) whose flow launches this one.
        The child belongs to the parent's owner when the caller is the parent's own flow
        (`Access.speaks_for`), else to the caller, who must be allowed to act on the parent.

        `placement`: where its executor must run, over the flow's (operators and admins).
        """
        if self.live.closing:
            raise Unavailable("the node is shutting down", reason="NODE_SHUTTING_DOWN")
        if not placement.anywhere and not principal.privileged:
            # Placement picks hosts (GPU hosts, a given machine): the operator's call.
            raise PermissionDenied(
                "only operators and admins may choose where a launch runs",
                reason="PLACEMENT_NOT_ALLOWED",
            )
        owner = principal.id
        parent: ExecutionRecord | None = None
        if not parent_execution_id and self.access.hosted_here(principal):
            # A flow of this node launches children of its execution (ctx.call_flow), owned
            # by and charged to that execution's owner; a launch of its own (an A2A call to
            # this node) would belong to, and spend the quotas of, no person.
            raise PermissionDenied(
                f"{principal.id} runs on this node: it launches flows here as children of "
                "its execution (ctx.call_flow), not on its own",
                reason="PARENT_REQUIRED",
            )
        # The owner's groups, kept for usage summaries by group: a child of a flow is its
        # parent's owner's run.
        groups = tuple(sorted(principal.groups))
        if parent_execution_id:
            parent = await self.access.parent(principal, parent_execution_id)
            if self.access.speaks_for(principal, parent):
                owner = parent.owner
                parent_live = self.live.get(parent.execution_id)
                groups = parent_live.groups if parent_live is not None else ()
        input_files = await resolve(self.files, principal, files, forwarded_for)
        try:
            flow = self.catalog.get(flow_name)
        except NotFound:
            # Peers do not forward again; this node's own executors (a flow calling a flow
            # with the node's certificate) do.
            from_peer = NODE in principal.roles and principal.id != self.access.identity
            if self.relayer is None or forwarded or from_peer:
                raise
            if quote_id:  # a quote is this node's offer for one of its own flows
                raise NotFound(
                    f"no quote {quote_id!r} for flow {flow_name!r} on this node",
                    reason="QUOTE_NOT_FOUND",
                ) from None
            files_port = self.files
            grant = None
            if input_files and files_port is not None:
                ids = [f.file_id for f in input_files]

                async def grant(node_id: str) -> None:
                    await files_port.grant_node(ids, node_id)

            record = await self.relayer.launch(
                principal,
                flow_name,
                inputs,
                owner=owner,
                parent=parent,
                files=input_files,
                grant=grant,
                groups=groups,
            )
            if input_files and files_port is not None:
                await files_port.link_inputs(record.execution_id, input_files)
            return record
        check_flow_access(principal, flow)  # the catalog's per-flow allow-list (auth)
        if flow.unavailable:
            # Found broken when the node checked its catalog (kodosumid/catalog_check.py).
            raise FailedPrecondition(
                f"flow {flow.name!r} is unavailable: {flow.unavailable}",
                reason="FLOW_UNAVAILABLE",
            )
        check_inputs(flow, inputs)
        raw_inputs = inputs
        inputs = with_defaults(flow.input_schema, inputs)
        execution_id = uuid.uuid4().hex
        if quote_id:
            if self.quotes is None:
                raise FailedPrecondition("this node makes no quotes", reason="QUOTES_UNAVAILABLE")
            # Checked against the inputs as sent (the quote hashed those), before defaults.
            await self.quotes.redeem(principal, quote_id, flow, raw_inputs, execution_id)
        run = launch_trace(execution_id, flow.name, principal.id)
        bind_run(execution_id, run.trace_id)
        now_ns = self.clock.now_ns()
        record = ExecutionRecord(
            execution_id=execution_id,
            flow=flow.name,
            owner=owner,
            status=event_pb2.EXECUTION_STATUS_PENDING,
            status_reason="",
            inputs=inputs,
            create_ns=now_ns,
            node_id=self.node_id,
            trace_id=run.trace_id,
            parent_execution_id=parent.execution_id if parent else "",
            placement=placement_json(placement),
        )
        first = first_events(execution_id, inputs, run, parent, now_ns)
        await self.store.create_execution(record, first, groups)
        if input_files and self.files is not None:
            await self.files.link_inputs(execution_id, input_files)
        record = replace(record, last_seq=len(first))
        live = LiveExecution(
            record,
            flow,
            stored_seq=len(first),
            status=record.status,
            traceparent=run.traceparent,
            placement=placement,
            groups=groups,
        )
        self.live.add(live)
        self.hub.publish(execution_id, Batch(1, first))
        self.observer.launched(record)
        # The node wrote these itself: they count among the events stored like any other.
        pending = StatusChange(1, event_pb2.EXECUTION_STATUS_PENDING, "")
        self.observer.stored(record, len(first), [pending])
        self.live.spawn(self.dispatcher.dispatch(live))
        return record
