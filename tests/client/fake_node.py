"""A small scripted node for client tests: real grpc.aio FlowService and NodeService over
loopback, with executions whose events the test writes, and a watch that can be told to
break after some batches.

It runs on its own event loop in a thread, so both sync tests (the CLI through CliRunner,
the blocking `Client`) and async tests can talk to it. Kept free of relative imports: the
fake `kodosumid` script imports it as a plain module in a subprocess.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2

from kodosumi.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    KodosumiError,
    NotFound,
)
from kodosumi.jsonvalue import dict_to_struct, struct_to_dict, value_to_python
from kodosumi.rpc.server import bind
from kodosumi.rpc.status import to_grpc_status, to_rpc_status
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc

T = TypeVar("T")
TERMINAL = {
    event_pb2.EXECUTION_STATUS_SUCCEEDED,
    event_pb2.EXECUTION_STATUS_FAILED,
    event_pb2.EXECUTION_STATUS_CANCELLED,
    event_pb2.EXECUTION_STATUS_TIMED_OUT,
}


def status_event(status: int, reason: str = "") -> event_pb2.Event:
    return event_pb2.Event(status_changed=event_pb2.StatusChanged(status=status, reason=reason))


def hello_script(inputs: dict[str, Any]) -> list[event_pb2.Event]:
    """What the scripted flow `hello` emits: a short successful run."""
    name = inputs.get("name", "world")
    return [
        status_event(event_pb2.EXECUTION_STATUS_STARTING),
        status_event(event_pb2.EXECUTION_STATUS_RUNNING),
        event_pb2.Event(output_line=event_pb2.OutputLine(stream=1, text=f"greeting {name}")),
        event_pb2.Event(progress=event_pb2.Progress(fraction=0.5, message="half way")),
        event_pb2.Event(result=event_pb2.Result(text=f"Hello, {name}!")),
        status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED),
    ]


def fail_script(inputs: dict[str, Any]) -> list[event_pb2.Event]:
    return [
        status_event(event_pb2.EXECUTION_STATUS_RUNNING),
        event_pb2.Event(
            error=event_pb2.Error(type="ValueError", message="bad", traceback="Traceback: x")
        ),
        status_event(event_pb2.EXECUTION_STATUS_FAILED, "ValueError: bad"),
    ]


def asking_script(
    kind: int, schema: dict[str, Any]
) -> Callable[[dict[str, Any]], list[event_pb2.Event]]:
    """A flow that asks for input at once and waits for the answer."""

    def script(inputs: dict[str, Any]) -> list[event_pb2.Event]:
        return [
            status_event(event_pb2.EXECUTION_STATUS_RUNNING),
            event_pb2.Event(
                input_requested=event_pb2.InputRequested(
                    request_id="r1", kind=kind, prompt="Go on?", schema=dict_to_struct(schema)
                )
            ),
            status_event(event_pb2.EXECUTION_STATUS_AWAITING_INPUT),
        ]

    return script


def answered(value: Any) -> list[event_pb2.Event]:
    """What an asking flow does with its answer: echo it as the result and succeed."""
    return [
        event_pb2.Event(result=event_pb2.Result(text=f"answer: {value!r}")),
        status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED),
    ]


FORM_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["count"],
}


@dataclass
class Scripted:
    """An execution of the fake node: its row and its stored events."""

    execution: flow_pb2.Execution
    events: list[event_pb2.Event] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    provided: list[tuple[str, Any]] = field(default_factory=list)


class FakeNode:
    """Scripted node state plus the servicers; every mutation runs on the node's loop."""

    def __init__(self, *, node_id: str = "fake-node") -> None:
        self.node_id = node_id
        self.flows: list[flow_pb2.Flow] = [
            flow_pb2.Flow(
                name="hello",
                entrypoint="flows.hello:main",
                description="Says hello",
                tags=["demo"],
                input_schema=dict_to_struct(
                    {"type": "object", "properties": {"name": {"type": "string"}}}
                ),
            )
        ]
        # flow name -> events emitted right after launch (before the test adds more)
        self.scripts: dict[str, Callable[[dict[str, Any]], list[event_pb2.Event]]] = {
            "hello": hello_script,
            "fail": fail_script,
            "approve": asking_script(event_pb2.INPUT_KIND_APPROVAL, {"type": "boolean"}),
            "form": asking_script(event_pb2.INPUT_KIND_FORM, FORM_SCHEMA),
        }
        for name in ("fail", "approve", "form"):
            self.flows.append(flow_pb2.Flow(name=name, entrypoint=f"flows.{name}:main"))
        self.runs: dict[str, Scripted] = {}
        self.order: list[str] = []
        # Watch calls abort with UNAVAILABLE after this many batches (None: never), as
        # long as `breaks` lasts.
        self.break_after: int | None = None
        self.breaks = 0
        # "abort": UNAVAILABLE, as a node going away; "end": close the stream cleanly early.
        self.break_mode = "abort"
        # A hostile node: replay from the first event whatever `after_seq` asks.
        self.ignore_after_seq = False
        self.batch_size = 2
        self.watch_calls: list[int] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: grpc.aio.Server | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self, port: int = 0, tls: TlsMaterial | None = None) -> int:
        async def _start() -> int:
            server = grpc.aio.server()
            flow_pb2_grpc.add_FlowServiceServicer_to_server(_FlowServicer(self), server)
            node_pb2_grpc.add_NodeServiceServicer_to_server(_NodeServicer(self), server)
            bound = bind(server, f"127.0.0.1:{port}", tls)
            await server.start()
            self.server = server
            return bound

        self.port = self.call(_start())
        return self.port

    def stop_server(self, grace: float | None = None) -> None:
        server, self.server = self.server, None
        if server is not None:
            self.call(server.stop(grace))

    def close(self) -> None:
        self.stop_server()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- scripting -----------------------------------------------------------------------

    def create(
        self, flow: str, inputs: dict[str, Any] | None = None, *, execution_id: str = ""
    ) -> str:
        """An execution of `flow` with only its PENDING event; the test appends the rest."""
        return self.call(self._create(flow, inputs or {}, script=False, given_id=execution_id))

    def append(self, execution_id: str, events: Iterable[event_pb2.Event]) -> None:
        self.call(self._append(execution_id, list(events)))

    def events_of(self, execution_id: str) -> list[event_pb2.Event]:
        return list(self.runs[execution_id].events)

    async def _create(
        self, flow: str, inputs: dict[str, Any], *, script: bool, given_id: str = ""
    ) -> str:
        execution_id = given_id or uuid.uuid4().hex[:12]
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        execution = flow_pb2.Execution(
            execution_id=execution_id,
            flow=flow,
            status=event_pb2.EXECUTION_STATUS_PENDING,
            owner="spiffe://local.kodosumi/user/test",
            create_time=now,
            node_id=self.node_id,
            inputs=dict_to_struct(inputs),
        )
        self.runs[execution_id] = Scripted(execution)
        self.order.insert(0, execution_id)
        await self._append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_PENDING)])
        if script and flow in self.scripts:
            await self._append(execution_id, self.scripts[flow](inputs))
        return execution_id

    async def _append(self, execution_id: str, events: list[event_pb2.Event]) -> None:
        run = self.runs[execution_id]
        for event in events:
            stored = event_pb2.Event()
            stored.CopyFrom(event)
            stored.execution_id = execution_id
            stored.seq = len(run.events) + 1
            stored.time_unix_nano = 1_700_000_000_000_000_000 + stored.seq * 1_000_000
            stored.attempt = 1
            run.events.append(stored)
            if stored.WhichOneof("kind") == "status_changed":
                run.execution.status = stored.status_changed.status
                run.execution.status_reason = stored.status_changed.reason
        run.execution.last_seq = len(run.events)
        async with run.changed:
            run.changed.notify_all()

    # -- RPC bodies ----------------------------------------------------------------------

    def run_of(self, execution_id: str) -> Scripted:
        run = self.runs.get(execution_id)
        if run is None:
            raise NotFound(f"no execution {execution_id}", reason="EXECUTION_NOT_FOUND")
        return run


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: KodosumiError) -> None:
    status = to_grpc_status(to_rpc_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


class _FlowServicer(flow_pb2_grpc.FlowServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    async def ListFlows(self, request: Any, context: Any) -> flow_pb2.ListFlowsResponse:
        flows = [f for f in self.node.flows if not request.tag or request.tag in f.tags]
        return flow_pb2.ListFlowsResponse(flows=flows)

    async def GetFlow(self, request: Any, context: Any) -> flow_pb2.GetFlowResponse:
        for flow in self.node.flows:
            if flow.name == request.name:
                return flow_pb2.GetFlowResponse(flow=flow)
        await _abort(context, NotFound(f"no flow {request.name}", reason="FLOW_NOT_FOUND"))
        raise AssertionError("unreachable")

    async def LaunchExecution(self, request: Any, context: Any) -> flow_pb2.LaunchExecutionResponse:
        names = {f.name for f in self.node.flows}
        if request.flow not in names:
            await _abort(context, NotFound(f"no flow {request.flow}", reason="FLOW_NOT_FOUND"))
        inputs = struct_to_dict(request.inputs)
        bad = [k for k, v in inputs.items() if k == "name" and not isinstance(v, str)]
        if bad:
            await _abort(
                context,
                InvalidArgument(
                    "inputs do not match the flow's schema",
                    violations=[FieldViolation("inputs.name", "must be a string")],
                    reason="INVALID_INPUTS",
                ),
            )
        execution_id = await self.node._create(request.flow, inputs, script=True)
        return flow_pb2.LaunchExecutionResponse(execution=self.node.runs[execution_id].execution)

    async def GetExecution(self, request: Any, context: Any) -> flow_pb2.GetExecutionResponse:
        try:
            run = self.node.run_of(request.execution_id)
        except NotFound as e:
            await _abort(context, e)
            raise
        return flow_pb2.GetExecutionResponse(execution=run.execution)

    async def ListExecutions(self, request: Any, context: Any) -> flow_pb2.ListExecutionsResponse:
        rows = [self.node.runs[i].execution for i in self.node.order]
        if request.statuses:
            rows = [r for r in rows if r.status in request.statuses]
        if request.flow:
            rows = [r for r in rows if r.flow == request.flow]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = rows[start : start + size]
        token = str(start + size) if start + size < len(rows) else ""
        return flow_pb2.ListExecutionsResponse(executions=page, next_page_token=token)

    async def WatchExecution(self, request: Any, context: Any) -> Any:
        node = self.node
        try:
            run = node.run_of(request.execution_id)
        except NotFound as e:
            await _abort(context, e)
            return
        node.watch_calls.append(request.after_seq)
        sent, batches = (0 if node.ignore_after_seq else request.after_seq), 0
        while True:
            if node.breaks and node.break_after is not None and batches >= node.break_after:
                node.breaks -= 1
                if node.break_mode == "end":
                    return
                await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted break")
            if run.execution.status in TERMINAL and sent >= len(run.events):
                return  # the contract: nothing after the terminal event, so end at once
            async with run.changed:
                await run.changed.wait_for(lambda after=sent: len(run.events) > after)
            batch = run.events[sent : sent + node.batch_size]
            yield flow_pb2.WatchExecutionResponse(events=batch)
            batches += 1
            sent = batch[-1].seq
            last = batch[-1]
            if last.WhichOneof("kind") == "status_changed" and (
                last.status_changed.status in TERMINAL
            ):
                return

    async def CancelExecution(self, request: Any, context: Any) -> flow_pb2.CancelExecutionResponse:
        run = self.node.runs.get(request.execution_id)
        if run is None:
            await _abort(context, NotFound("no such execution", reason="EXECUTION_NOT_FOUND"))
            raise AssertionError("unreachable")
        if run.execution.status in TERMINAL:
            await _abort(context, FailedPrecondition("finished", reason="EXECUTION_FINISHED"))
        await self.node._append(
            request.execution_id,
            [status_event(event_pb2.EXECUTION_STATUS_CANCELLED, request.reason)],
        )
        return flow_pb2.CancelExecutionResponse(execution=run.execution)

    async def ProvideInput(self, request: Any, context: Any) -> flow_pb2.ProvideInputResponse:
        run = self.node.runs.get(request.execution_id)
        if run is None:
            await _abort(context, NotFound("no such execution", reason="EXECUTION_NOT_FOUND"))
            raise AssertionError("unreachable")
        value = value_to_python(request.value)
        if run.execution.status != event_pb2.EXECUTION_STATUS_AWAITING_INPUT:
            await _abort(context, FailedPrecondition("awaits no input", reason="NO_INPUT_AWAITED"))
        run.provided.append((request.request_id, value))
        await self.node._append(
            request.execution_id,
            [
                event_pb2.Event(
                    input_provided=event_pb2.InputProvided(
                        request_id=request.request_id, value=request.value, provided_by="test"
                    )
                ),
                status_event(event_pb2.EXECUTION_STATUS_RUNNING),
                *answered(value),
            ],
        )
        return flow_pb2.ProvideInputResponse()


class _NodeServicer(node_pb2_grpc.NodeServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    async def GetNodeInfo(self, request: Any, context: Any) -> node_pb2.GetNodeInfoResponse:
        return node_pb2.GetNodeInfoResponse(
            node=node_pb2.NodeInfo(
                node_id=self.node.node_id,
                version="test",
                endpoints=[self.node.address],
                flows=self.node.flows,
            )
        )
