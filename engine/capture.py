"""Per-execution capture of stdout, stderr and log records inside a shared executor process.

Several executions share one process, so `sys.stdout` is replaced once by a router that
looks up the execution bound to the current context (a ContextVar, which follows the flow
into its asyncio tasks and `asyncio.to_thread` calls) and turns complete lines into events
of that execution. Output of code running outside any execution goes to the real stream.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.runner import ExecutionRun

_current_run: contextvars.ContextVar[ExecutionRun | None] = contextvars.ContextVar(
    "kodosumi_current_run", default=None
)
_install_lock = threading.Lock()
_installed = False


def current_run() -> ExecutionRun | None:
    return _current_run.get()


def bind(run: ExecutionRun) -> contextvars.Token[ExecutionRun | None]:
    return _current_run.set(run)


def unbind(token: contextvars.Token[ExecutionRun | None]) -> None:
    _current_run.reset(token)


class _RoutingStream(io.TextIOBase):
    def __init__(self, original: Any, stream: int) -> None:
        super().__init__()
        self._original = original
        self._stream = stream

    def write(self, text: str) -> int:
        run = _current_run.get()
        if run is None:
            return int(self._original.write(text) or 0)
        run.output(self._stream, text)
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self._original, "encoding", "utf-8"))

    def fileno(self) -> int:
        return int(self._original.fileno())


class _RunLogHandler(logging.Handler):
    """Log records emitted while an execution is current become its log events."""

    def emit(self, record: logging.LogRecord) -> None:
        run = _current_run.get()
        if run is None:
            return
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        run.log_record(message, record.levelno, record.name)


def install() -> None:
    """Route this process's stdout, stderr and logging through the current execution (once)."""
    global _installed
    from kodosumi.v1 import event_pb2

    with _install_lock:
        if _installed:
            return
        sys.stdout = _RoutingStream(sys.stdout, event_pb2.OUTPUT_STREAM_STDOUT)
        sys.stderr = _RoutingStream(sys.stderr, event_pb2.OUTPUT_STREAM_STDERR)
        root = logging.getLogger()
        root.addHandler(_RunLogHandler(level=logging.INFO))
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        _installed = True
