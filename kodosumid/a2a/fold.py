"""`TaskFold`: the A2A task an execution's events describe, and the stream updates they give.

The fold reads an execution's events in `seq` order; because the events are the store's,
every stream and every `GetTask` of a task tells the same story in the same order
(docs/a2a.md has the table). Pure, no gRPC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from a2a.types import a2a_pb2 as a2a

from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.v1 import event_pb2
from kodosumid.a2a.files import file_part
from kodosumid.a2a.parts import agent_message, data_part, result_artifact, text_part
from kodosumid.a2a.states import INTERRUPTED_STATES, TERMINAL_STATES, state_of

S = event_pb2
_KIND_NAMES = {
    S.INPUT_KIND_FORM: "form",
    S.INPUT_KIND_APPROVAL: "approval",
    S.INPUT_KIND_TEXT: "text",
}


def _timestamp(status: a2a.TaskStatus, time_unix_nano: int) -> None:
    if time_unix_nano:
        status.timestamp.FromNanoseconds(time_unix_nano)


@dataclass(slots=True)
class OpenRequest:
    request_id: str
    kind: str
    prompt: str
    schema: dict[str, Any]
    default: Any = None
    has_default: bool = False

    def data(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "kind": self.kind,
            "schema": self.schema,
            "default": self.default if self.has_default else None,
        }


@dataclass(slots=True)
class _ArtifactBuffer:
    artifact_id: str
    name: str
    media_type: str
    chunks: list[bytes] = field(default_factory=list)
    # An output file: its part names the file instead of carrying bytes.
    file: a2a.Part | None = None

    def as_artifact(self) -> a2a.Artifact:
        if self.file is not None:
            return a2a.Artifact(artifact_id=self.artifact_id, name=self.name, parts=[self.file])
        payload = b"".join(self.chunks)
        return a2a.Artifact(
            artifact_id=self.artifact_id, name=self.name, parts=[_content_part(payload, self)]
        )


def _content_part(payload: bytes, artifact: _ArtifactBuffer, whole: bool = True) -> a2a.Part:
    """Text for a whole text artifact, raw bytes otherwise (chunks may split a character)."""
    if whole and artifact.media_type.startswith("text/"):
        try:
            return a2a.Part(text=payload.decode(), media_type=artifact.media_type)
        except UnicodeDecodeError:
            pass
    return a2a.Part(raw=payload, media_type=artifact.media_type, filename=artifact.name)


class TaskFold:
    """The A2A task an execution's events describe, built one event at a time.

    `apply` returns the stream updates an event gives. Status updates carry a message for
    what a person watching would want to read: the reason of a status change, the step an
    agent or task starts or ends, progress, and the open input request (prompt as text,
    `{request_id, kind, schema, default}` as data). An AWAITING_INPUT status is announced
    with its request (the engine stores the status just before the request).
    """

    def __init__(
        self, task_id: str, flow: str = "", node_id: str = "", *, keep_artifacts: bool = True
    ) -> None:
        self.task_id = task_id
        # False for a stream that replays artifacts as updates (SubscribeToTask): the fold
        # then keeps no artifact bytes, so a stream holds one page of events, not the task.
        self.keep_artifacts = keep_artifacts
        self.flow = flow
        self.node_id = node_id
        self.state: int = a2a.TASK_STATE_SUBMITTED
        self.status = a2a.TaskStatus(state=a2a.TASK_STATE_SUBMITTED)
        self.our_status: int = S.EXECUTION_STATUS_PENDING
        self.last_seq = 0
        self.history: list[a2a.Message] = []
        self.open_requests: dict[str, OpenRequest] = {}
        self._artifacts: dict[str, _ArtifactBuffer] = {}
        self._artifact_order: list[str] = []
        self._result: a2a.Artifact | None = None
        self._last_error = ""
        self._announced_state: int = a2a.TASK_STATE_UNSPECIFIED
        # Requests this caller just answered, whose InputProvided may not be stored yet.
        self.answered: set[str] = set()

    # -- state --------------------------------------------------------------------------------

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        return self.state in INTERRUPTED_STATES and bool(set(self.open_requests) - self.answered)

    def task(self, history_length: int | None = None, include_artifacts: bool = True) -> a2a.Task:
        """The task now; `history_length` as the specification reads it (None: all)."""
        task = a2a.Task(id=self.task_id, context_id=self.task_id)
        task.status.CopyFrom(self.status)
        if include_artifacts and self.keep_artifacts:
            task.artifacts.extend(self.artifacts())
        if history_length is None:
            task.history.extend(self.history)
        elif history_length > 0:
            task.history.extend(self.history[-history_length:])
        task.metadata.update(
            {"flow": self.flow, "status": S.ExecutionStatus.Name(self.our_status)}  # type: ignore[arg-type]
        )
        if self.node_id:
            task.metadata["node_id"] = self.node_id
        return task

    def artifacts(self) -> list[a2a.Artifact]:
        found = [self._artifacts[a].as_artifact() for a in self._artifact_order]
        if self._result is not None:
            found.append(self._result)
        return found

    # -- events -------------------------------------------------------------------------------

    def apply_batch(self, events: list[event_pb2.Event]) -> list[a2a.StreamResponse]:
        """The updates of events that arrived together, with each run of consecutive
        progress events told once, by its last (a flow may report progress thousands of
        times a second; A2A carries one update per message). Everything else — state
        changes, steps, input requests, artifacts — is told one by one, in order."""
        updates: list[a2a.StreamResponse] = []
        pending: event_pb2.Event | None = None
        for event in events:
            if event.WhichOneof("kind") == "progress":
                self.last_seq = event.seq
                pending = event
                continue
            if pending is not None:
                updates += self.apply(pending)
                pending = None
            updates += self.apply(event)
        if pending is not None:
            updates += self.apply(pending)
        return updates

    def apply(self, event: event_pb2.Event) -> list[a2a.StreamResponse]:
        self.last_seq = event.seq
        kind = event.WhichOneof("kind")
        if kind == "status_changed":
            return self._status(event)
        if kind == "inputs_received":
            inputs = struct_to_dict(event.inputs_received.inputs)
            message = a2a.Message(
                message_id=f"{self.task_id}-{event.seq}",
                task_id=self.task_id,
                context_id=self.task_id,
                role=a2a.ROLE_USER,
                parts=[data_part(inputs)],
            )
            self.history.append(message)
            return []
        if kind == "input_requested":
            return self._input_requested(event)
        if kind == "input_provided":
            provided = event.input_provided
            self.open_requests.pop(provided.request_id, None)
            value = value_to_python(provided.value)
            self.history.append(
                a2a.Message(
                    message_id=f"{self.task_id}-{event.seq}",
                    task_id=self.task_id,
                    context_id=self.task_id,
                    role=a2a.ROLE_USER,
                    parts=[data_part({"request_id": provided.request_id, "value": value})],
                )
            )
            return []
        if kind == "artifact":
            return [self._artifact(event.artifact)]
        if kind == "result":
            self._result = result_artifact(event.result)
            return [self._artifact_update(self._result, append=False, last_chunk=True)]
        if kind == "error":
            self._last_error = f"{event.error.type}: {event.error.message}".strip(": ")
            return []
        if kind in ("agent_step", "task_step", "progress") and self.state == a2a.TASK_STATE_WORKING:
            text = _step_text(event)
            if text:
                return [self._status_update(a2a.TASK_STATE_WORKING, event, [text_part(text)])]
        return []

    def _status(self, event: event_pb2.Event) -> list[a2a.StreamResponse]:
        change = event.status_changed
        self.our_status = change.status
        state = state_of(change.status)
        if state == a2a.TASK_STATE_UNSPECIFIED:
            return []
        self.state = state
        if state == a2a.TASK_STATE_INPUT_REQUIRED and not self.open_requests:
            # Announced with the request that follows it.
            self.status = a2a.TaskStatus(state=state)  # type: ignore[arg-type]
            _timestamp(self.status, event.time_unix_nano)
            return []
        if state == self._announced_state and not change.reason:
            return []
        parts: list[a2a.Part] = []
        reason = change.reason
        if state == a2a.TASK_STATE_FAILED and self._last_error and not reason:
            reason = self._last_error
        if reason:
            parts.append(text_part(reason))
        return [self._status_update(state, event, parts)]

    def _input_requested(self, event: event_pb2.Event) -> list[a2a.StreamResponse]:
        requested = event.input_requested
        request = OpenRequest(
            request_id=requested.request_id,
            kind=_KIND_NAMES.get(requested.kind, "form"),
            prompt=requested.prompt,
            schema=struct_to_dict(requested.schema),
            default=value_to_python(requested.default_value) if requested.has_default else None,
            has_default=requested.has_default,
        )
        self.open_requests[request.request_id] = request
        self.state = a2a.TASK_STATE_INPUT_REQUIRED
        parts = [text_part(request.prompt), data_part(request.data())]
        update = self._status_update(a2a.TASK_STATE_INPUT_REQUIRED, event, parts)
        self.history.append(update.status_update.status.message)
        return [update]

    def _status_update(
        self, state: int, event: event_pb2.Event, parts: list[a2a.Part]
    ) -> a2a.StreamResponse:
        status = a2a.TaskStatus(state=state)  # type: ignore[arg-type]
        _timestamp(status, event.time_unix_nano)
        if parts:
            message_id = f"{self.task_id}-{event.seq}"
            status.message.CopyFrom(agent_message(message_id, self.task_id, parts))
        self.status = status
        self._announced_state = state
        response = a2a.StreamResponse()
        update = response.status_update
        update.task_id = self.task_id
        update.context_id = self.task_id
        update.status.CopyFrom(status)
        update.metadata["seq"] = event.seq
        return response

    def _artifact(self, chunk: event_pb2.Artifact) -> a2a.StreamResponse:
        if chunk.file_id:  # an output file: the part names it (kodosumid/a2a/files.py)
            saved = _ArtifactBuffer(chunk.artifact_id, chunk.name, chunk.media_type)
            saved.file = file_part(chunk, self.node_id)
            self._artifacts[chunk.artifact_id] = saved
            self._artifact_order.append(chunk.artifact_id)
            return self._artifact_update(saved.as_artifact(), append=False, last_chunk=True)
        buffer = self._artifacts.get(chunk.artifact_id)
        if buffer is None:
            buffer = _ArtifactBuffer(chunk.artifact_id, chunk.name, chunk.media_type)
            self._artifacts[chunk.artifact_id] = buffer
            self._artifact_order.append(chunk.artifact_id)
        if self.keep_artifacts:
            buffer.chunks.append(chunk.data)
        whole = chunk.chunk_index == 0 and chunk.last_chunk
        artifact = a2a.Artifact(
            artifact_id=chunk.artifact_id,
            name=chunk.name,
            parts=[_content_part(chunk.data, buffer, whole=whole)],
        )
        if chunk.total_size:
            artifact.metadata["total_size"] = chunk.total_size
        return self._artifact_update(
            artifact, append=chunk.chunk_index > 0, last_chunk=chunk.last_chunk
        )

    def _artifact_update(
        self, artifact: a2a.Artifact, *, append: bool, last_chunk: bool
    ) -> a2a.StreamResponse:
        response = a2a.StreamResponse()
        update = response.artifact_update
        update.task_id = self.task_id
        update.context_id = self.task_id
        update.artifact.CopyFrom(artifact)
        update.append = append
        update.last_chunk = last_chunk
        return response


def _step_text(event: event_pb2.Event) -> str:
    kind = event.WhichOneof("kind")
    phases = {
        S.STEP_PHASE_STARTED: "started",
        S.STEP_PHASE_COMPLETED: "completed",
        S.STEP_PHASE_FAILED: "failed",
    }
    if kind == "agent_step":
        step = event.agent_step
        phase = phases.get(step.phase)
        if phase is None:
            return ""
        task = f" {step.task_name!r}" if step.task_name else ""
        return f"agent {step.agent_role!r} {phase}{task}"
    if kind == "task_step":
        step_t = event.task_step
        phase = phases.get(step_t.phase)
        if phase is None:
            return ""
        return f"task {step_t.task_name!r} {phase}" + (
            f" by {step_t.agent_role!r}" if step_t.agent_role else ""
        )
    progress = event.progress
    if progress.HasField("fraction"):
        return f"{progress.fraction:.0%} {progress.message}".strip()
    return progress.message
