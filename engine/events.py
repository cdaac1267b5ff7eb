"""Builders for the typed events the engine emits (`kodosumi.v1.Event` with one `kind` set)."""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from engine.files import SavedFile
from kodosumi.jsonvalue import dict_to_struct, python_to_value
from kodosumi.v1 import event_pb2

Event = event_pb2.Event
Status = event_pb2.ExecutionStatus


class Markdown(str):
    """A flow result (or artifact) that is markdown rather than plain text."""

    __slots__ = ()


def status(value: int, reason: str = "") -> Event:
    event = Event()
    event.status_changed.status = value  # type: ignore[assignment]
    event.status_changed.reason = reason
    return event


def output_line(stream: int, text: str) -> Event:
    event = Event()
    event.output_line.stream = stream  # type: ignore[assignment]
    event.output_line.text = text
    return event


_LEVELS = {
    logging.DEBUG: event_pb2.LOG_LEVEL_DEBUG,
    logging.INFO: event_pb2.LOG_LEVEL_INFO,
    logging.WARNING: event_pb2.LOG_LEVEL_WARNING,
    logging.ERROR: event_pb2.LOG_LEVEL_ERROR,
    logging.CRITICAL: event_pb2.LOG_LEVEL_CRITICAL,
}


def log_level(levelno: int) -> int:
    """The event log level of a Python logging level (rounded down to a named level)."""
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _LEVELS[threshold]
    return event_pb2.LOG_LEVEL_DEBUG


def log(message: str, levelno: int = logging.INFO, logger: str = "") -> Event:
    event = Event()
    event.log_record.level = log_level(levelno)  # type: ignore[assignment]
    event.log_record.logger = logger
    event.log_record.message = message
    return event


def progress(fraction: float | None = None, message: str = "") -> Event:
    event = Event()
    event.progress.message = message
    if fraction is not None:
        event.progress.fraction = min(1.0, max(0.0, float(fraction)))
    else:
        event.progress.SetInParent()
    return event


def progress_from_yield(value: Any) -> Event:
    """What a generator flow yields, as progress: a fraction, a message, both, or a dict."""
    if isinstance(value, bool):
        return progress(message=str(value))
    if isinstance(value, int | float):
        return progress(float(value))
    if isinstance(value, str):
        return progress(message=value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int | float):
        return progress(float(value[0]), str(value[1]))
    if isinstance(value, dict) and ("fraction" in value or "message" in value):
        fraction = value.get("fraction")
        return progress(
            None if fraction is None else float(fraction), str(value.get("message", ""))
        )
    return progress(message=_to_text(value))


def error(exc: BaseException) -> Event:
    event = Event()
    event.error.type = type(exc).__name__
    event.error.message = str(exc)
    event.error.traceback = "".join(traceback.format_exception(exc))
    return event


def result(value: Any) -> Event:
    """The final result: text, markdown, JSON, or a prepared `Result` message."""
    event = Event()
    target = event.result
    if isinstance(value, event_pb2.Result):
        target.CopyFrom(value)
    elif value is None:
        target.SetInParent()
    elif isinstance(value, Markdown):
        target.markdown = str(value)
    elif isinstance(value, str):
        target.text = value
    elif isinstance(value, bytes | bytearray):
        target.text = value.decode("utf-8", errors="replace")
    else:
        jsonable = _jsonable(value)
        python_to_value(jsonable, target.json)
        target.has_json = True
        target.text = json.dumps(jsonable, ensure_ascii=False, default=str)
    return event


def child_execution(relation: int, execution_id: str, flow: str, node_id: str) -> Event:
    """A link between a parent and a child execution (`ChildRelation` CHILD or PARENT)."""
    event = Event()
    link = event.child_execution
    link.relation = relation  # type: ignore[assignment]
    link.execution_id = execution_id
    link.flow = flow
    link.node_id = node_id
    return event


def metric(
    name: str, value: float, unit: str = "", attributes: dict[str, str] | None = None
) -> Event:
    event = Event()
    event.metric.name = name
    event.metric.value = float(value)
    event.metric.unit = unit
    for key, text in (attributes or {}).items():
        event.metric.attributes[key] = str(text)
    return event


def artifact_chunk(
    artifact_id: str,
    name: str,
    media_type: str,
    data: bytes,
    chunk_index: int,
    last_chunk: bool,
    total_size: int,
) -> Event:
    event = Event()
    a = event.artifact
    a.artifact_id, a.name, a.media_type, a.data = artifact_id, name, media_type, data
    a.chunk_index, a.last_chunk, a.total_size = chunk_index, last_chunk, total_size
    return event


def artifact_file(artifact_id: str, saved: SavedFile) -> Event:
    """A file stored on the node (`ctx.save_file`): its id, size and hash, not its bytes."""
    event = Event()
    a = event.artifact
    a.artifact_id, a.name, a.media_type = artifact_id, saved.name, saved.media_type
    a.last_chunk, a.total_size = True, saved.size
    a.file_id, a.sha256, a.node_id = saved.file_id, saved.sha256, saved.node_id
    return event


def input_requested(
    request_id: str,
    kind: int,
    prompt: str,
    schema: dict[str, Any],
    timeout_seconds: float,
    default: Any,
    has_default: bool,
) -> Event:
    event = Event()
    r = event.input_requested
    r.request_id, r.kind, r.prompt = request_id, kind, prompt  # type: ignore[assignment]
    dict_to_struct(schema, r.schema)
    r.timeout_seconds = timeout_seconds
    if has_default:
        python_to_value(default, r.default_value)
        r.has_default = True
    return event


def input_provided(request_id: str, value: Any, provided_by: str, timed_out: bool = False) -> Event:
    event = Event()
    p = event.input_provided
    p.request_id, p.provided_by, p.timed_out = request_id, provided_by, timed_out
    python_to_value(value, p.value)
    return event


def framework_event(framework: str, type_name: str, data: dict[str, Any]) -> Event:
    event = Event()
    event.framework_event.framework = framework
    event.framework_event.type = type_name
    dict_to_struct(_jsonable(data), event.framework_event.data)
    return event


def _jsonable(value: Any) -> Any:
    """Best effort: pydantic models dump themselves, the rest goes through a JSON round trip."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _to_text(value: Any) -> str:
    try:
        return json.dumps(_jsonable(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
