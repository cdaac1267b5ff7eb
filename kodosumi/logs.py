"""The daemons' own log: text or JSON lines, each line about a run naming its execution and
trace, so an operator goes from a log line to the run's events and to its trace.

Which run a line concerns comes, first, from `extra={"execution_id": ...}` on the call;
else from the run bound to the current asyncio task or thread (`bind_run`, set where the
node works on one execution: launch, dispatch, relay); the trace id, failing those, from
the current OpenTelemetry span (lines written while serving an RPC).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from kodosumi.telemetry import current_trace_ids

_run: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "kodosumi_log_run", default=("", "")
)
# LogRecord attributes that are not `extra` fields.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_OWN = frozenset({"execution_id", "trace_id", "span_id"})
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def bind_run(execution_id: str, trace_id: str = "") -> None:
    """Lines logged from here on in this task (or thread) are about this execution."""
    _run.set((execution_id, trace_id))


def bound_run() -> tuple[str, str]:
    return _run.get()


class RunContextFilter(logging.Filter):
    """Puts `execution_id`, `trace_id` and `span_id` on every record (empty when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        execution_id, trace_id = _run.get()
        span_trace, span_id = current_trace_ids()
        own_trace = getattr(record, "trace_id", "") or trace_id or span_trace
        if not getattr(record, "execution_id", ""):
            record.execution_id = execution_id
        record.trace_id = own_trace
        if not getattr(record, "span_id", ""):
            record.span_id = span_id if own_trace == span_trace else ""
        return True


class TextFormatter(logging.Formatter):
    """The usual text line, with `[execution=... trace=...]` when the line is about a run."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [
            f"{label}={value}"
            for label, value in (
                ("execution", getattr(record, "execution_id", "")),
                ("trace", getattr(record, "trace_id", "")),
            )
            if value
        ]
        if not tags:
            return line
        head, sep, rest = line.partition("\n")  # keep tracebacks below the tagged line
        return f"{head} [{' '.join(tags)}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run's ids, `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("execution_id", "trace_id", "span_id"):
            value = getattr(record, key, "")
            if value:
                data[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _OWN and not key.startswith("_"):
                data[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """The root logger of a daemon: one handler to stderr, text or JSON, with run context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RunContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
