"""What an execution's events mean for its job: state, open input requests, the result.

A pure fold (no I/O): the follower in driver.py feeds it the execution's events from the
start and writes what changed into the job's row. MIP-003 wants the result as one string,
so a result's text (else its markdown, else its JSON) becomes the string, and files the run
saved are appended as links the gateway serves (`<public_url>/<service>/files/<job>/<file>`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.jobs import JobState
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.statuses import status_word
from kodosumi.v1 import event_pb2

__all__ = ["MAX_INLINE_BYTES", "ExecutionView", "apply"]

# Inline artifacts a job keeps, at most, in the gateway (memory while following, then its
# database); the rest are left out of the result: files are how large outputs travel.
MAX_INLINE_BYTES = 8 << 20

_S = event_pb2


@dataclass(slots=True)
class ExecutionView:
    state: JobState = JobState.RUNNING
    node_status: str = ""
    open_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)  # (name, file_id)
    # Inline artifacts (content in the events): id -> (name, media type, bytes so far).
    inline: dict[str, tuple[str, str, bytearray]] = field(default_factory=dict)
    complete: list[str] = field(default_factory=list)  # inline artifact ids, in order
    inline_bytes: int = 0
    dropped: set[str] = field(default_factory=set)  # over MAX_INLINE_BYTES
    reason: str = ""
    terminal: bool = False

    def result(self, link: Any, inline_link: Any = None) -> str:
        """The flattened result; `link(file_id)` is the URL a file is served at,
        `inline_link(artifact_id)` the URL of an inline artifact the gateway kept."""
        lines = [self.text] if self.text else []
        lines += [f"{name}: {link(file_id)}" for name, file_id in self.files]
        if inline_link is not None:
            lines += [f"{self.inline[a][0]}: {inline_link(a)}" for a in self.complete]
        return "\n\n".join(lines) if lines and self.text else "\n".join(lines)


def _result_text(result: event_pb2.Result) -> str:
    if result.text:
        return result.text
    if result.markdown:
        return result.markdown
    if result.has_json:
        return json.dumps(value_to_python(result.json), ensure_ascii=False, sort_keys=True)
    return ""


def apply(view: ExecutionView, event: event_pb2.Event) -> bool:
    """Fold one event into `view`; True when the job's row should change."""
    kind = event.WhichOneof("kind")
    if kind == "status_changed":
        status = event.status_changed.status
        view.node_status = status_word(status)
        if status == _S.EXECUTION_STATUS_SUCCEEDED:
            view.state, view.terminal = JobState.COMPLETED, True
            view.open_inputs.clear()
        elif status in (
            _S.EXECUTION_STATUS_FAILED,
            _S.EXECUTION_STATUS_CANCELLED,
            _S.EXECUTION_STATUS_TIMED_OUT,
        ):
            view.state, view.terminal = JobState.FAILED, True
            view.reason = event.status_changed.reason or view.node_status
            view.open_inputs.clear()
        elif status == _S.EXECUTION_STATUS_AWAITING_INPUT:
            view.state = JobState.AWAITING_INPUT
        else:
            view.state = JobState.RUNNING
        return True
    if kind == "input_requested":
        request = event.input_requested
        view.open_inputs[request.request_id] = {
            "request_id": request.request_id,
            "prompt": request.prompt,
            "schema": struct_to_dict(request.schema) if request.HasField("schema") else {},
        }
        return True
    if kind == "input_provided":
        view.open_inputs.pop(event.input_provided.request_id, None)
        if not view.open_inputs and view.state is JobState.AWAITING_INPUT:
            view.state = JobState.RUNNING
        return True
    if kind == "result":
        view.text = _result_text(event.result)
        return True
    if kind == "artifact" and event.artifact.file_id:
        view.files.append((event.artifact.name or event.artifact.file_id, event.artifact.file_id))
        return True
    if kind == "artifact":
        artifact = event.artifact
        if artifact.artifact_id in view.dropped:
            return False
        view.inline_bytes += len(artifact.data)
        if view.inline_bytes > MAX_INLINE_BYTES:
            # This one is left out whole; what it had counted is free again for others.
            view.dropped.add(artifact.artifact_id)
            held = view.inline.pop(artifact.artifact_id, None)
            view.inline_bytes -= len(artifact.data) + (len(held[2]) if held else 0)
            return False
        _, _, data = view.inline.setdefault(
            artifact.artifact_id,
            (artifact.name or artifact.artifact_id, artifact.media_type, bytearray()),
        )
        data.extend(artifact.data)
        if artifact.last_chunk and artifact.artifact_id not in view.complete:
            view.complete.append(artifact.artifact_id)
        return False
    if kind == "error" and not view.reason:
        view.reason = f"{event.error.type}: {event.error.message}".strip(": ")
    return False
