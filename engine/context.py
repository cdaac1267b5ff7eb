"""The context object a flow receives: its identity, its inputs, and the ways to report and ask.

Flow code takes it as a parameter named `ctx` (or `context`, or annotated `FlowContext`).
Every method is safe to call from any thread of the flow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine import events
from engine.calls import AgentCallFailed, ChildFlowFailed, ChildFlowTimedOut, FlowCallsUnavailable
from engine.files import FilesUnavailable, InputFiles, SavedFile
from kodosumi.v1 import event_pb2

if TYPE_CHECKING:
    from engine.runner import ExecutionRun

ARTIFACT_CHUNK_BYTES = 256 * 1024
_MISSING: Any = object()

InputKind = Literal["form", "approval", "text"]
TimeoutPolicy = Literal["fail", "default"]
_KINDS = {
    "form": event_pb2.INPUT_KIND_FORM,
    "approval": event_pb2.INPUT_KIND_APPROVAL,
    "text": event_pb2.INPUT_KIND_TEXT,
}


class ExecutionCancelled(BaseException):
    """Raised inside a flow that was cancelled (or timed out). A BaseException, like
    asyncio.CancelledError, so that `except Exception` in flow code does not swallow it."""


class InputTimedOut(Exception):
    """An input request timed out and its policy is to fail the execution."""


class FlowContext:
    def __init__(self, run: ExecutionRun) -> None:
        self._run = run

    @property
    def execution_id(self) -> str:
        return self._run.spec.execution_id

    @property
    def flow(self) -> str:
        return self._run.spec.flow

    @property
    def inputs(self) -> dict[str, Any]:
        return self._run.spec.inputs

    @property
    def attempt(self) -> int:
        return self._run.spec.attempt

    @property
    def node_id(self) -> str:
        return self._run.spec.node_id

    @property
    def cancelled(self) -> bool:
        return self._run.cancel_requested

    def check_cancelled(self) -> None:
        """Raise ExecutionCancelled when the execution was cancelled; call it in long loops."""
        if self._run.cancel_requested:
            raise ExecutionCancelled(self._run.cancel_reason)

    def sleep(self, seconds: float) -> None:
        """Sleep that wakes up (raising ExecutionCancelled) as soon as the run is cancelled."""
        if self._run.cancel_event.wait(max(0.0, seconds)):
            raise ExecutionCancelled(self._run.cancel_reason)

    def emit(self, event: event_pb2.Event) -> int:
        """Append a prepared event (one `kind` set); blocks while the buffer is full. A `usage`
        event is the engine's alone (it is what the run is billed by): refused."""
        if event.WhichOneof("kind") == "usage":
            raise ValueError("a flow may not emit usage events: the engine measures the run")
        return self._run.emit(event)

    def log(self, message: str, level: int | str = logging.INFO, logger: str = "") -> None:
        levelno = level if isinstance(level, int) else logging.getLevelName(level.upper())
        self.emit(
            events.log(message, levelno if isinstance(levelno, int) else logging.INFO, logger)
        )

    def progress(self, fraction: float | None = None, message: str = "") -> None:
        self.emit(events.progress(fraction, message))

    def markdown(self, text: str, name: str = "markdown") -> None:
        self.artifact(name, text, media_type="text/markdown")

    def artifact(
        self, name: str, data: bytes | str | dict[str, Any] | list[Any], media_type: str = ""
    ) -> str:
        """Emit content as an artifact, in chunks for large data; returns the artifact id."""
        if isinstance(data, bytes):
            payload, media = data, media_type or "application/octet-stream"
        elif isinstance(data, str):
            payload, media = data.encode(), media_type or "text/plain"
        else:
            payload, media = json.dumps(data).encode(), media_type or "application/json"
        artifact_id = uuid.uuid4().hex[:16]
        chunks = [
            payload[i : i + ARTIFACT_CHUNK_BYTES]
            for i in range(0, max(len(payload), 1), ARTIFACT_CHUNK_BYTES)
        ]
        for index, chunk in enumerate(chunks):
            self.emit(
                events.artifact_chunk(
                    artifact_id, name, media, chunk, index, index == len(chunks) - 1, len(payload)
                )
            )
        return artifact_id

    @property
    def files(self) -> InputFiles:
        """The launch's input files: name -> a read-only local path (fetched on first use)."""
        return self._run.files

    def save_file(self, name: str, data: bytes | str | Path, media_type: str = "") -> SavedFile:
        """Store an output file on the node (bytes, text, or the path of a local file) and
        emit an artifact event carrying its `file_id`, size and SHA-256, not its bytes.
        Clients list and download it (`koco files`, `koco download`)."""
        bridge = self._run.file_bridge
        if bridge is None:
            raise FilesUnavailable("this execution has no node to store files on")
        self.check_cancelled()
        source: bytes | Path = data.encode() if isinstance(data, str) else data
        media = (
            media_type
            or mimetypes.guess_type(name)[0]
            or ("text/plain" if isinstance(data, str) else "application/octet-stream")
        )
        saved = bridge.save(self.flow, self.execution_id, name, source, media)
        self.emit(events.artifact_file(uuid.uuid4().hex[:16], saved))
        return saved

    def set_result(self, value: Any) -> None:
        """The execution's result when the flow function returns None (async generators)."""
        self._run.result_value = value

    def metric(self, name: str, value: float, unit: str = "", **attributes: str) -> None:
        self.emit(events.metric(name, value, unit, attributes))

    def request_input(
        self,
        prompt: str,
        *,
        schema: dict[str, Any] | None = None,
        kind: InputKind = "form",
        timeout: float | None = None,
        default: Any = _MISSING,
        on_timeout: TimeoutPolicy = "fail",
    ) -> Any:
        """Ask a human or a system for input and wait for the answer (validated by `schema`).

        The execution is AWAITING_INPUT while any request is open. On timeout the policy
        decides: `"default"` returns `default`, `"fail"` raises InputTimedOut.
        """
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}")
        if schema is None:
            schema = {"approval": {"type": "boolean"}, "text": {"type": "string"}}.get(
                kind, {"type": "object"}
            )
        use_default = on_timeout == "default"
        if use_default and default is _MISSING:
            raise ValueError("on_timeout='default' needs a default")
        return self._run.request_input(
            prompt,
            kind=_KINDS[kind],
            schema=schema,
            timeout=timeout or 0.0,
            default=None if default is _MISSING else default,
            use_default=use_default,
        )

    async def arequest_input(self, prompt: str, **options: Any) -> Any:
        """`request_input` for async flows: waits without blocking the flow's event loop."""
        return await asyncio.to_thread(self.request_input, prompt, **options)

    def call_flow(
        self,
        flow: str,
        inputs: dict[str, Any] | None = None,
        *,
        node: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run another flow as a child of this execution, wait for it, return its result.

        The child is launched on this node (which hands it to a peer that offers the flow
        when it does not), with this flow's identity when it has one. Both streams link the
        two: this one gets a `ChildExecution` (CHILD) event once the child is accepted, the
        child's starts with one (PARENT) naming this execution. The result is the child's
        JSON value, `Markdown` or text. A child that does not succeed raises
        `ChildFlowFailed` (status and reason); after `timeout` seconds the child is
        cancelled and `ChildFlowTimedOut` raised. Cancelling this execution cancels the child.
        """
        run = self._run
        caller = run.flow_caller
        if caller is None:
            raise FlowCallsUnavailable("this execution has no node to launch flows on")
        self.check_cancelled()
        child = caller.launch(
            flow,
            dict(inputs or {}),
            parent_execution_id=self.execution_id,
            parent_flow=self.flow,
            node=node,
        )
        self.emit(
            events.child_execution(
                event_pb2.CHILD_RELATION_CHILD, child.execution_id, child.flow, child.node_id
            )
        )
        unregister = run.on_cancel(lambda reason: caller.cancel(child, reason))
        try:
            outcome = caller.wait(child, timeout)
        except TimeoutError:
            reason = f"parent {self.execution_id} stopped waiting after {timeout:g}s"
            caller.cancel(child, reason)
            raise ChildFlowTimedOut(child.flow, child.execution_id, "TIMED_OUT", reason) from None
        finally:
            unregister()
        self.check_cancelled()
        if not outcome.succeeded:
            raise ChildFlowFailed(
                child.flow, child.execution_id, outcome.status_name, outcome.reason
            )
        return outcome.value()

    def call_agent(
        self,
        agent: Any,
        message: str | dict[str, Any],
        *,
        tenant: str = "",
        timeout: float | None = None,
    ) -> Any:
        """Send `message` to an A2A 1.0 agent over gRPC and wait for its task to end.

        `agent` is a gRPC address (`host:port`, e.g. another node), an `http(s)://` base URL
        (its card is read by HTTP discovery) or an A2A `AgentCard`; `tenant` picks a flow of
        a Kodosumi node. A string message is sent as a text part, a dict as a data part. The
        call dials with this flow's identity (else the node's), and every update of the
        agent's task streams into this execution as a framework event (`a2a`). Returns the
        agent's `result` artifact (else its last one) as a JSON value or text; a task that
        does not complete raises `AgentCallFailed`.
        """
        run = self._run
        call = getattr(run.flow_caller, "call_agent", None)
        if call is None:
            raise FlowCallsUnavailable("this execution has no node to call agents from")
        self.check_cancelled()

        def on_update(kind: str, data: dict[str, Any]) -> None:
            self.emit(events.framework_event("a2a", kind, data))

        outcome = call(
            agent,
            message,
            caller_flow=self.flow,
            tenant=tenant,
            timeout=timeout,
            on_update=on_update,
        )
        self.check_cancelled()
        if not outcome.completed:
            raise AgentCallFailed(str(agent), outcome.task_id, outcome.state, outcome.reason)
        return outcome.value

    async def acall_agent(self, agent: Any, message: str | dict[str, Any], **options: Any) -> Any:
        """`call_agent` for async flows: waits without blocking the flow's event loop."""
        return await asyncio.to_thread(self.call_agent, agent, message, **options)

    async def acall_flow(
        self, flow: str, inputs: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        """`call_flow` for async flows: waits without blocking the flow's event loop."""
        return await asyncio.to_thread(self.call_flow, flow, inputs, **options)

    def approve(self, prompt: str, *, timeout: float | None = None) -> bool:
        return bool(self.request_input(prompt, kind="approval", timeout=timeout))

    def ask(self, prompt: str, *, timeout: float | None = None) -> str:
        return str(self.request_input(prompt, kind="text", timeout=timeout))
