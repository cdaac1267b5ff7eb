"""Executions and their events ↔ A2A tasks, messages, parts, status and artifact updates.

Pure mapping (no gRPC, no I/O): a task is an execution, its id the execution id. The rooms:
`states` (statuses ↔ task states), `parts` (parts, messages, the result artifact), `fold`
(`TaskFold`: an execution's events as a task and its stream updates) and `messages` (inputs
and answers read from callers' messages). This module gathers their names for importers.
"""

from __future__ import annotations

from kodosumid.a2a.fold import OpenRequest, TaskFold
from kodosumid.a2a.messages import check_parts, input_answer, launch_inputs, single_string_field
from kodosumid.a2a.parts import (
    RESULT_ARTIFACT_ID,
    agent_message,
    data_part,
    result_artifact,
    text_part,
)
from kodosumid.a2a.states import (
    INTERRUPTED_STATES,
    STATE_OF_STATUS,
    STATUSES_OF_STATE,
    TERMINAL_STATES,
    state_of,
)

__all__ = [
    "INTERRUPTED_STATES",
    "RESULT_ARTIFACT_ID",
    "STATE_OF_STATUS",
    "STATUSES_OF_STATE",
    "TERMINAL_STATES",
    "OpenRequest",
    "TaskFold",
    "agent_message",
    "check_parts",
    "data_part",
    "input_answer",
    "launch_inputs",
    "result_artifact",
    "single_string_field",
    "state_of",
    "text_part",
]
