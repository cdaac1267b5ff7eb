"""The pure mapping: events → A2A task and updates, messages → inputs and answers, our
errors → A2A's. No node, no gRPC."""

from __future__ import annotations

import subprocess
import sys

import pytest
from a2a.types import a2a_pb2 as a2a

from kodosumi.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kodosumi.jsonvalue import dict_to_struct, python_to_value, value_to_python
from kodosumi.v1 import event_pb2 as ev
from kodosumid.a2a.errors import (
    A2A_DOMAIN,
    ContentTypeNotSupported,
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
    translate,
)
from kodosumid.a2a.mapping import (
    TaskFold,
    check_parts,
    input_answer,
    launch_inputs,
)
from tests.a2a.helpers import data_message, text_message
from tests.node.conftest import REPO


def _status(seq: int, status: int, reason: str = "") -> ev.Event:
    event = ev.Event(execution_id="t", seq=seq, time_unix_nano=seq * 1000)
    event.status_changed.status = status  # type: ignore[assignment]
    event.status_changed.reason = reason
    return event


def _request(seq: int, request_id: str = "r1", kind: int = ev.INPUT_KIND_FORM) -> ev.Event:
    event = ev.Event(execution_id="t", seq=seq)
    event.input_requested.request_id = request_id
    event.input_requested.kind = kind  # type: ignore[assignment]
    event.input_requested.prompt = "How many?"
    dict_to_struct({"type": "integer"}, event.input_requested.schema)
    return event


def _artifact(seq: int, index: int, last: bool, data: bytes) -> ev.Event:
    event = ev.Event(execution_id="t", seq=seq)
    a = event.artifact
    a.artifact_id, a.name, a.media_type = "a1", "blob", "application/octet-stream"
    a.data, a.chunk_index, a.last_chunk = data, index, last
    return event


def _updates(fold: TaskFold, events: list[ev.Event]) -> list[a2a.StreamResponse]:
    return [u for e in events for u in fold.apply(e)]


def test_a_run_folds_into_states_artifacts_and_a_result() -> None:
    fold = TaskFold("t", "flow")
    inputs = ev.Event(execution_id="t", seq=2)
    dict_to_struct({"x": 1}, inputs.inputs_received.inputs)
    result = ev.Event(execution_id="t", seq=8)
    result.result.text = '{"y": 2}'
    python_to_value({"y": 2}, result.result.json)
    result.result.has_json = True
    updates = _updates(
        fold,
        [
            _status(1, ev.EXECUTION_STATUS_PENDING),
            inputs,
            _status(3, ev.EXECUTION_STATUS_STARTING),
            _status(4, ev.EXECUTION_STATUS_RUNNING),
            _artifact(5, 0, False, b"ab"),
            _artifact(6, 1, True, b"cd"),
            _status(7, ev.EXECUTION_STATUS_RETRYING, "attempt 1 failed"),
            result,
            _status(9, ev.EXECUTION_STATUS_SUCCEEDED),
        ],
    )
    kinds = [u.WhichOneof("payload") for u in updates]
    assert kinds == [
        "status_update",  # SUBMITTED
        "status_update",  # WORKING (STARTING and RUNNING are one state)
        "artifact_update",
        "artifact_update",
        "status_update",  # WORKING again, with the retry's reason
        "artifact_update",  # the result
        "status_update",  # COMPLETED
    ]
    chunks = [u.artifact_update for u in updates[2:4]]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, True)]
    assert updates[4].status_update.status.message.parts[0].text == "attempt 1 failed"
    task = fold.task()
    assert fold.terminal and task.status.state == a2a.TASK_STATE_COMPLETED
    assert [a.artifact_id for a in task.artifacts] == ["a1", "result"]
    assert task.artifacts[0].parts[0].raw == b"abcd"
    assert value_to_python(task.artifacts[1].parts[0].data) == {"y": 2}
    assert value_to_python(task.history[0].parts[0].data) == {"x": 1}
    assert fold.task(history_length=0).history == []


def test_input_required_is_announced_with_its_request() -> None:
    fold = TaskFold("t")
    _updates(
        fold, [_status(1, ev.EXECUTION_STATUS_PENDING), _status(2, ev.EXECUTION_STATUS_RUNNING)]
    )
    assert fold.apply(_status(3, ev.EXECUTION_STATUS_AWAITING_INPUT)) == []
    (update,) = fold.apply(_request(4))
    status = update.status_update.status
    assert status.state == a2a.TASK_STATE_INPUT_REQUIRED
    assert status.message.parts[0].text == "How many?"
    assert value_to_python(status.message.parts[1].data) == {
        "request_id": "r1",
        "kind": "form",
        "schema": {"type": "integer"},
        "default": None,
    }
    assert fold.interrupted
    fold.answered.add("r1")
    assert not fold.interrupted


def test_a_failure_carries_the_error() -> None:
    fold = TaskFold("t")
    error = ev.Event(execution_id="t", seq=2)
    error.error.type, error.error.message = "ValueError", "boom"
    (update,) = _updates(fold, [error, _status(3, ev.EXECUTION_STATUS_FAILED)])
    assert update.status_update.status.state == a2a.TASK_STATE_FAILED
    assert update.status_update.status.message.parts[0].text == "ValueError: boom"


def test_inputs_from_parts() -> None:
    one_string = {"type": "object", "properties": {"name": {"type": "string"}}}
    assert launch_inputs(text_message("Ada"), one_string) == {"name": "Ada"}
    assert launch_inputs(data_message({"n": 1}), {"type": "object"}) == {"n": 1}
    with pytest.raises(InvalidParams):
        launch_inputs(text_message("x"), {"type": "object"})
    with pytest.raises(InvalidParams):
        launch_inputs(data_message([1, 2]), {"type": "object"})
    raw = a2a.Message(parts=[a2a.Part(raw=b"x")])
    with pytest.raises(ContentTypeNotSupported):
        launch_inputs(raw, one_string)
    with pytest.raises(InvalidParams):
        check_parts(a2a.Message(), 100)
    with pytest.raises(InvalidParams) as caught:
        check_parts(text_message("x" * 200), 100)
    assert caught.value.violations[0].field == "message.parts[0]"


def test_answers_name_their_request_or_the_only_open_one() -> None:
    fold = TaskFold("t")
    fold.apply(_request(1, "r1", ev.INPUT_KIND_APPROVAL))
    assert input_answer(text_message("yes"), fold.open_requests) == ("r1", True)
    fold.apply(_request(2, "r2"))
    with pytest.raises(InvalidParams):
        input_answer(text_message("yes"), fold.open_requests)
    named = data_message({"request_id": "r2", "value": 3})
    assert input_answer(named, fold.open_requests) == ("r2", 3)
    with pytest.raises(InvalidParams):
        input_answer(data_message({"request_id": "r9", "value": 3}), fold.open_requests)
    with pytest.raises(InvalidParams):
        input_answer(text_message("x"), {})


def test_our_errors_become_the_specs() -> None:
    assert isinstance(translate(NotFound("x", reason="EXECUTION_NOT_FOUND")), TaskNotFound)
    hidden = translate(PermissionDenied("x", reason="NOT_YOUR_EXECUTION"))
    assert isinstance(hidden, TaskNotFound)
    ended = FailedPrecondition("x", reason="EXECUTION_FINISHED")
    assert isinstance(translate(ended, cancelling=True), TaskNotCancelable)
    assert isinstance(translate(ended), UnsupportedOperation)
    bad = translate(InvalidArgument.field("inputs.n", "too big"))
    assert isinstance(bad, InvalidParams) and bad.domain == A2A_DOMAIN
    assert bad.violations[0].field == "inputs.n"
    denied = PermissionDenied("x", reason="FLOW_NOT_ALLOWED")
    assert translate(denied) is denied
    assert TaskNotFound("x").domain == A2A_DOMAIN == "a2a-protocol.org"


def test_the_mapping_imports_no_grpc() -> None:
    probe = "import sys, kodosumid.a2a.mapping; print('grpc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_runs_of_progress_are_told_once_everything_else_one_by_one() -> None:
    fold = TaskFold("t")
    fold.apply_batch(
        [_status(1, ev.EXECUTION_STATUS_PENDING), _status(2, ev.EXECUTION_STATUS_RUNNING)]
    )

    def progress(seq: int) -> ev.Event:
        event = ev.Event(execution_id="t", seq=seq)
        event.progress.message = f"p{seq}"
        return event

    batch = [progress(3), progress(4), _artifact(5, 0, True, b"x"), progress(6), progress(7)]
    updates = fold.apply_batch(batch)
    told = [
        u.status_update.status.message.parts[0].text
        if u.HasField("status_update")
        else u.artifact_update.artifact.artifact_id
        for u in updates
    ]
    assert told == ["p4", "a1", "p7"]
    assert fold.last_seq == 7


def test_every_status_has_a_state() -> None:
    from kodosumid.a2a.mapping import STATE_OF_STATUS

    named = set(ev.ExecutionStatus.values()) - {ev.EXECUTION_STATUS_UNSPECIFIED}
    assert named == set(STATE_OF_STATUS)
