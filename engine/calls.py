"""Flows calling flows: the `FlowCaller` the host is given, and what `ctx.call_flow` returns.

The engine does not know how a child is launched (it never imports grpc): the executor
hands the host a `FlowCaller` that launches the child on the node, waits for it to end and
cancels it. Every method blocks and runs in the calling flow's thread, except `cancel`,
which the engine calls from a thread of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from engine.events import Markdown
from kodosumi.jsonvalue import value_to_python
from kodosumi.statuses import status_word
from kodosumi.v1 import event_pb2


@dataclass(frozen=True, slots=True)
class ChildLaunch:
    """A launched child execution."""

    execution_id: str
    flow: str
    # The node the child is recorded on (it may run on a peer that offers the flow).
    node_id: str
    # The flow that launched it (its identity dialed the node, if it has one).
    caller_flow: str = ""


@dataclass(frozen=True, slots=True)
class ChildResult:
    """How a child execution ended."""

    execution_id: str
    # An `ExecutionStatus` value (a terminal one).
    status: int
    # Why it ended that way (empty when it succeeded).
    reason: str = ""
    result: event_pb2.Result | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == event_pb2.EXECUTION_STATUS_SUCCEEDED

    @property
    def status_name(self) -> str:
        """`FAILED`, `CANCELLED`, ... (the status without its enum prefix)."""
        return status_word(self.status)

    def value(self) -> Any:
        """The child's result as flow code sees it: a JSON value, `Markdown` or text."""
        result = self.result
        if result is None:
            return None
        if result.has_json:
            return value_to_python(result.json)
        if result.markdown:
            return Markdown(result.markdown)
        return result.text or None


class FlowCaller(Protocol):
    """Launches, waits for and cancels the child executions of flows (see the module doc)."""

    def launch(
        self,
        flow: str,
        inputs: dict[str, Any],
        *,
        parent_execution_id: str,
        parent_flow: str,
        node: str | None = None,
    ) -> ChildLaunch:
        """Launch `flow` as a child of `parent_execution_id`; returns once it is accepted."""
        ...

    def wait(self, child: ChildLaunch, timeout: float | None = None) -> ChildResult:
        """Block until the child ended; `TimeoutError` after `timeout` seconds."""
        ...

    def cancel(self, child: ChildLaunch, reason: str) -> None:
        """Cancel the child and make a `wait` on it return (best effort, never raises)."""
        ...


class ChildFlowFailed(Exception):
    """A flow called with `ctx.call_flow` did not succeed (FAILED, CANCELLED or TIMED_OUT)."""

    def __init__(self, flow: str, execution_id: str, status: str, reason: str) -> None:
        self.flow = flow
        self.execution_id = execution_id
        self.status = status
        self.reason = reason
        super().__init__(
            f"child flow {flow!r} (execution {execution_id}) ended {status}"
            + (f": {reason}" if reason else "")
        )


class ChildFlowTimedOut(ChildFlowFailed):
    """`ctx.call_flow(..., timeout=...)` gave up waiting; the child was cancelled."""


class FlowCallsUnavailable(RuntimeError):
    """This engine was started without a `FlowCaller` (no node to launch children on)."""


@dataclass(frozen=True, slots=True)
class AgentResult:
    """How an A2A agent's task ended (`ctx.call_agent`)."""

    task_id: str
    # The A2A task state's name without its prefix: COMPLETED, FAILED, CANCELED, ...
    state: str
    # The text of the last status message (why it failed, what it asks for).
    reason: str = ""
    # The agent's answer: its `result` artifact (else its last), as a JSON value or text.
    value: Any = None

    @property
    def completed(self) -> bool:
        return self.state == "COMPLETED"


class AgentCallFailed(RuntimeError):
    """The A2A agent's task did not complete (failed, was cancelled or rejected, or waits
    for input this flow cannot give)."""

    def __init__(self, agent: str, task_id: str, state: str, reason: str) -> None:
        super().__init__(f"agent {agent} task {task_id} ended {state}: {reason}".rstrip(": "))
        self.agent, self.task_id, self.state, self.reason = agent, task_id, state, reason
