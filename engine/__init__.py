"""The engine: runs a flow inside an executor and turns what it does into kodosumi events.

Flow authors use `FlowContext` (the `ctx` parameter), `Markdown` for markdown results and
`ExecutionCancelled`. The engine never imports grpc; it imports crewai only for CrewAI flows.
"""

from engine.calls import AgentCallFailed, ChildFlowFailed, ChildFlowTimedOut
from engine.context import ExecutionCancelled, FlowContext, InputTimedOut
from engine.events import Markdown

__all__ = [
    "AgentCallFailed",
    "ChildFlowFailed",
    "ChildFlowTimedOut",
    "ExecutionCancelled",
    "FlowContext",
    "InputTimedOut",
    "Markdown",
]
