"""How one event reads as one scrolling line on a terminal, and the status and kind words.

`event_line` turns an event into one line (or None when the event only moves the live
view), through `RENDERERS`, one pure function per kind of event; `status_text` and
`input_kind_name` are the words the live view uses too. No clock, terminal or network.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from rich.text import Text

from kodoclient.events import status_name
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.v1 import event_pb2

Event = event_pb2.Event

STATUS_STYLES: dict[int, str] = {
    event_pb2.EXECUTION_STATUS_PENDING: "dim",
    event_pb2.EXECUTION_STATUS_STARTING: "cyan",
    event_pb2.EXECUTION_STATUS_RUNNING: "blue",
    event_pb2.EXECUTION_STATUS_AWAITING_INPUT: "yellow",
    event_pb2.EXECUTION_STATUS_SUCCEEDED: "green",
    event_pb2.EXECUTION_STATUS_FAILED: "red",
    event_pb2.EXECUTION_STATUS_CANCELLED: "magenta",
    event_pb2.EXECUTION_STATUS_TIMED_OUT: "red",
    event_pb2.EXECUTION_STATUS_PEER_LOST: "bold red",
}

_LEVEL_STYLES: dict[int, tuple[str, str]] = {
    event_pb2.LOG_LEVEL_UNSPECIFIED: ("LOG", "dim"),
    event_pb2.LOG_LEVEL_DEBUG: ("DEBUG", "dim"),
    event_pb2.LOG_LEVEL_INFO: ("INFO", ""),
    event_pb2.LOG_LEVEL_WARNING: ("WARN", "yellow"),
    event_pb2.LOG_LEVEL_ERROR: ("ERROR", "red"),
    event_pb2.LOG_LEVEL_CRITICAL: ("CRIT", "bold red"),
}

_ALERT_STYLES: dict[int, str] = {
    event_pb2.ALERT_SEVERITY_UNSPECIFIED: "yellow",
    event_pb2.ALERT_SEVERITY_INFO: "cyan",
    event_pb2.ALERT_SEVERITY_WARNING: "yellow",
    event_pb2.ALERT_SEVERITY_CRITICAL: "bold red",
}

_SNIPPET = 160


def status_text(status: int) -> Text:
    return Text(status_name(status), style=f"bold {STATUS_STYLES.get(status, '')}".strip())


def _clip(text: str, limit: int = _SNIPPET) -> str:
    """One line of at most `limit` characters: the scrolling log is not the place for essays."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} min {ms % 60_000 / 1000:.0f} s"


def _json(value: Any, limit: int = _SNIPPET) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")), limit)


def _step(
    phase: int,
    what: str,
    *,
    started: str = "",
    output: str = "",
    error: str = "",
    duration_ms: float = 0.0,
    style: str = "cyan",
    verbose: bool = False,
) -> Text | None:
    """The shared shape of agent, task, LLM and tool steps: start, end, failure, stream."""
    took = f" ({_duration(duration_ms)})" if duration_ms else ""
    if phase == event_pb2.STEP_PHASE_STARTED:
        return Text.assemble(("▶ ", style), (what, style), (f" {started}" if started else ""))
    if phase == event_pb2.STEP_PHASE_COMPLETED:
        tail = f": {_clip(output)}" if output else ""
        return Text.assemble(("✔ ", "green"), (what, style), (took, "dim"), tail)
    if phase == event_pb2.STEP_PHASE_FAILED:
        return Text.assemble(("✖ ", "red"), (what, "red"), (took, "dim"), (f": {error}", "red"))
    if phase == event_pb2.STEP_PHASE_STREAMING:
        # Streamed chunks arrive by the hundred; only worth a line when asked for.
        return Text.assemble(("… ", "dim"), (what, "dim"), f" {_clip(output)}") if verbose else None
    return Text.assemble(("• ", style), (what, style), (f": {_clip(output)}" if output else ""))


def _status_changed(event: Event, verbose: bool) -> Text | None:
    change = event.status_changed
    style = STATUS_STYLES.get(change.status, "")
    reason = f" — {change.reason}" if change.reason else ""
    return Text.assemble(("● ", style), status_text(change.status), (reason, style))


def _inputs_received(event: Event, verbose: bool) -> Text | None:
    inputs = struct_to_dict(event.inputs_received.inputs)
    return Text.assemble(("inputs ", "dim"), (_json(inputs), "dim"))


def _output_line(event: Event, verbose: bool) -> Text | None:
    line = event.output_line
    if line.stream == event_pb2.OUTPUT_STREAM_STDERR:
        return Text.assemble(("stderr│ ", "dim yellow"), (line.text, "yellow"))
    return Text.assemble(("│ ", "dim"), line.text)


def _log_record(event: Event, verbose: bool) -> Text | None:
    record = event.log_record
    label, style = _LEVEL_STYLES.get(record.level, ("LOG", ""))
    where = f"{record.logger}: " if record.logger else ""
    return Text.assemble((f"{label:<5} ", style or "bold"), (where, "dim"), (record.message, style))


def _agent_step(event: Event, verbose: bool) -> Text | None:
    step = event.agent_step
    what = f"agent {step.agent_role or '?'}"
    return _step(
        step.phase,
        what,
        started=f"on {step.task_name}" if step.task_name else "",
        output=step.output,
        error=step.error,
        duration_ms=step.duration_ms,
        style="cyan",
        verbose=verbose,
    )


def _task_step(event: Event, verbose: bool) -> Text | None:
    step = event.task_step
    what = f"task {step.task_name or '?'}"
    started = f"({step.agent_role}) " if step.agent_role else ""
    return _step(
        step.phase,
        what,
        started=started + _clip(step.description, 100),
        output=step.output,
        error=step.error,
        duration_ms=step.duration_ms,
        style="blue",
        verbose=verbose,
    )


def _llm_call(event: Event, verbose: bool) -> Text | None:
    call = event.llm_call
    what = f"llm {call.model or '?'}"
    if call.phase == event_pb2.STEP_PHASE_COMPLETED:
        usage = call.usage
        tokens = (
            f" {usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage.total_tokens else ""
        )
        took = f", {_duration(call.latency_ms)}" if call.latency_ms else ""
        who = f" for {call.agent_role}" if call.agent_role else ""
        return Text.assemble(("✔ ", "green"), (what, "magenta"), who, (f"{tokens}{took}", "dim"))
    return _step(
        call.phase,
        what,
        started=f"for {call.agent_role}" if call.agent_role else "",
        output=call.chunk,
        error=call.error,
        duration_ms=call.latency_ms,
        style="magenta",
        verbose=verbose,
    )


def _tool_call(event: Event, verbose: bool) -> Text | None:
    call = event.tool_call
    what = f"tool {call.tool_name or '?'}"
    args = f"({_clip(call.arguments_json, 80)})" if call.arguments_json else ""
    return _step(
        call.phase,
        what,
        started=args,
        output=call.result,
        error=call.error,
        duration_ms=call.latency_ms,
        style="green",
        verbose=verbose,
    )


_INPUT_KINDS: dict[int, str] = {
    event_pb2.INPUT_KIND_FORM: "form",
    event_pb2.INPUT_KIND_APPROVAL: "approval",
    event_pb2.INPUT_KIND_TEXT: "text",
}


def input_kind_name(kind: int) -> str:
    return _INPUT_KINDS.get(kind, "input")


def _input_requested(event: Event, verbose: bool) -> Text | None:
    request = event.input_requested
    extras = []
    if request.timeout_seconds:
        extras.append(f"timeout {request.timeout_seconds:g} s")
    if request.has_default:
        extras.append(f"default {_json(value_to_python(request.default_value), 60)}")
    tail = f" ({', '.join(extras)})" if extras else ""
    return Text.assemble(
        ("? ", "bold yellow"),
        (f"{input_kind_name(request.kind)} requested", "bold yellow"),
        (f" [{request.request_id}]", "dim"),
        f": {request.prompt}" if request.prompt else "",
        (tail, "dim"),
    )


def _input_provided(event: Event, verbose: bool) -> Text | None:
    provided = event.input_provided
    value = _json(value_to_python(provided.value), 100)
    if provided.timed_out:
        return Text.assemble(
            ("⏱ ", "yellow"),
            (f"input [{provided.request_id}] timed out", "yellow"),
            f"; default {value} used",
        )
    who = f" by {provided.provided_by}" if provided.provided_by else ""
    return Text.assemble(("✔ ", "green"), f"input [{provided.request_id}] = {value}", (who, "dim"))


def _result(event: Event, verbose: bool) -> Text | None:
    result = event.result
    forms = [
        name
        for name, present in (
            ("markdown", bool(result.markdown)),
            ("json", result.has_json),
            ("text", bool(result.text)),
        )
        if present
    ]
    if result.task_outputs:
        forms.append(f"{len(result.task_outputs)} task outputs")
    return Text.assemble(("■ result", "bold green"), (f" ({', '.join(forms)})" if forms else ""))


def _artifact(event: Event, verbose: bool) -> Text | None:
    art = event.artifact
    name = art.name or art.artifact_id
    media = art.media_type or "application/octet-stream"
    first, last = art.chunk_index == 0, art.last_chunk
    if first and last:
        size = art.total_size or len(art.data)
        return Text.assemble(("▣ artifact ", "cyan"), name, (f" ({media}, {size} bytes)", "dim"))
    if first:
        return Text.assemble(("▣ artifact ", "cyan"), name, (f" ({media}) receiving…", "dim"))
    if last:
        total = f", {art.total_size} bytes" if art.total_size else ""
        return Text.assemble(("▣ artifact ", "cyan"), name, (f" complete ({media}{total})", "dim"))
    return None


def _error(event: Event, verbose: bool) -> Text | None:
    error = event.error
    label = error.type or "Error"
    text = Text.assemble(("✖ ", "bold red"), (f"{label}: ", "bold red"), (error.message, "red"))
    if verbose and error.traceback:
        text.append("\n" + error.traceback.rstrip(), style="dim red")
    return text


def _metric(event: Event, verbose: bool) -> Text | None:
    metric = event.metric
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(metric.attributes.items()))
    unit = f" {metric.unit}" if metric.unit else ""
    return Text.assemble(
        ("metric ", "dim"),
        f"{metric.name} = {metric.value:g}{unit}",
        (f" {{{attrs}}}" if attrs else "", "dim"),
    )


def _alert(event: Event, verbose: bool) -> Text | None:
    alert = event.alert
    style = _ALERT_STYLES.get(alert.severity, "yellow")
    rule = f" {alert.rule}" if alert.rule else ""
    return Text.assemble(("⚠ alert", style), (rule, f"bold {style}"), (f": {alert.message}", style))


def _progress(event: Event, verbose: bool) -> Text | None:
    progress = event.progress
    done = f" {progress.fraction * 100:.0f}%" if progress.HasField("fraction") else ""
    message = f" {progress.message}" if progress.message else ""
    return Text.assemble(("progress", "blue"), (done, "bold blue"), message)


# CrewAI's agent_logs_* events repeat what the agent, LLM and tool step lines already say
# (the agent's role, its answer): folded into those lines, shown on their own only with -v.
_FOLDED_PREFIXES = ("agent_logs_",)


def _framework_event(event: Event, verbose: bool) -> Text | None:
    fe = event.framework_event
    if not verbose and fe.type.startswith(_FOLDED_PREFIXES):
        return None
    data = f" {_json(struct_to_dict(fe.data))}" if verbose and fe.data.fields else ""
    return Text(f"{fe.framework or 'framework'} {fe.type}{data}", style="dim")


def _child_execution(event: Event, verbose: bool) -> Text | None:
    child = event.child_execution
    where = f" on {child.node_id}" if child.node_id else ""
    flow = f" ({child.flow})" if child.flow else ""
    if child.relation == event_pb2.CHILD_RELATION_PARENT:
        return Text.assemble(("↰ started by ", "cyan"), child.execution_id, flow, where)
    return Text.assemble(("↳ child execution ", "cyan"), child.execution_id, flow, where)


def _usage(event: Event, verbose: bool) -> Text | None:
    # What the attempt used (docs/market.md), one line before the result.
    u = event.usage
    parts = [f"{u.wall_seconds:.1f} s", f"cpu {u.cpu_seconds:.1f} s"]
    for m in u.models:
        calls = "call" if m.calls == 1 else "calls"
        parts.append(f"{m.model or 'llm'} {m.calls} {calls} {m.input_tokens}/{m.output_tokens} tok")
    if u.tool_calls:
        parts.append(f"{u.tool_calls} tool call{'s' if u.tool_calls != 1 else ''}")
    parts.append(f"in {u.input_bytes} B, out {u.output_bytes} B")
    if u.artifact_bytes:
        parts.append(f"artifacts {u.artifact_bytes} B")
    return Text.assemble((f"usage (attempt {u.attempt}) ", "dim"), ", ".join(parts))


# One renderer per member of `Event.kind`; a test holds this table against event.proto.
RENDERERS: dict[str, Callable[[Event, bool], Text | None]] = {
    "status_changed": _status_changed,
    "inputs_received": _inputs_received,
    "output_line": _output_line,
    "log_record": _log_record,
    "agent_step": _agent_step,
    "task_step": _task_step,
    "llm_call": _llm_call,
    "tool_call": _tool_call,
    "input_requested": _input_requested,
    "input_provided": _input_provided,
    "result": _result,
    "artifact": _artifact,
    "error": _error,
    "metric": _metric,
    "alert": _alert,
    "progress": _progress,
    "framework_event": _framework_event,
    "child_execution": _child_execution,
    "usage": _usage,
}


def clock(event: Event, tz: dt.tzinfo | None = None) -> str:
    if not event.time_unix_nano:
        return "--:--:--"
    moment = dt.datetime.fromtimestamp(event.time_unix_nano / 1e9, tz or dt.UTC)
    if tz is None:
        moment = moment.astimezone()
    return moment.strftime("%H:%M:%S")


def event_line(event: Event, *, verbose: bool = False, tz: dt.tzinfo | None = None) -> Text | None:
    """One log line for `event`, prefixed with its time; None when it only moves the view."""
    kind = event.WhichOneof("kind")
    renderer = RENDERERS.get(kind) if kind else None
    if renderer is None:
        # A newer node may send kinds this client does not know: say so, do not crash.
        body: Text | None = Text(f"event #{event.seq} of a kind this client does not know", "dim")
    else:
        body = renderer(event, verbose)
    if body is None:
        return None
    return Text.assemble((clock(event, tz) + " ", "dim"), body)
