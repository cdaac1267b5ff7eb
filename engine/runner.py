"""One execution inside an executor: its thread, its buffer, its cancel and input state.

Each execution runs in a thread of its own (async flows on a private event loop in that
thread), so a flow that blocks never stalls the executor's control loop, which keeps
answering drain, cancel and provide_input. Exactly one terminal status event ends the
stream: the first one appended seals the buffer.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from engine import capture, events, loader, observers
from engine.adapters import adapter_for
from engine.buffer import ExecutionBuffer
from engine.calls import FlowCaller
from engine.context import ExecutionCancelled, FlowContext, InputTimedOut
from engine.files import FileBridge, FileRef, InputFiles
from engine.spec import ExecutionSpec
from engine.usage import UsageMeter
from kodosumi.errors import FailedPrecondition, InvalidArgument
from kodosumi.schema import check_schema
from kodosumi.schema import violations as schema_violations
from kodosumi.v1 import event_pb2

log = logging.getLogger(__name__)

S = event_pb2


@dataclass
class PendingInput:
    request_id: str
    schema: dict[str, Any]
    answered: threading.Event = field(default_factory=threading.Event)
    value: Any = None


class ExecutionRun:
    def __init__(
        self,
        spec: ExecutionSpec,
        buffer: ExecutionBuffer,
        flow_caller: FlowCaller | None = None,
        file_bridge: FileBridge | None = None,
    ) -> None:
        self.spec = spec
        self.buffer = buffer
        # Launches the child executions of `ctx.call_flow` (None: the flow cannot call flows).
        self.flow_caller = flow_caller
        # Moves the bytes of `ctx.files` and `ctx.save_file` (None: no node to move them).
        self.file_bridge = file_bridge
        self.files = InputFiles(
            [FileRef.from_dict(f) for f in spec.files], spec.flow, spec.execution_id, file_bridge
        )
        # Called (each in a thread of its own) when the execution is cancelled.
        self._cancel_hooks: dict[int, Callable[[str], None]] = {}
        self._hooks_lock = threading.Lock()
        # Spans of this attempt, from the events it emits (engine/observers.py); None while
        # the process traces nothing (and exports no metrics): no work per event then.
        self._observe = observers.observer_for(spec)
        # What this attempt uses, sent before the status that ends it (engine/usage.py).
        self.usage = UsageMeter(
            spec.attempt, spec.inputs, whole_process=spec.isolation == "process"
        )
        self.ctx = FlowContext(self)
        self.cancel_event = threading.Event()
        self.cancel_status = 0
        self.cancel_reason = ""
        self.result_value: Any = None
        self._thread: threading.Thread | None = None
        self._flow_loop: asyncio.AbstractEventLoop | None = None
        self._flow_task: asyncio.Task[Any] | None = None
        self._inputs_lock = threading.Lock()
        self._pending: dict[str, PendingInput] = {}
        self._partial: dict[int, str] = {}
        # Held while output lines are emitted and while the run writes its last events, so a
        # line printed by another thread (CrewAI's event-bus pool) lands before the result or
        # after the terminal status (discarded: the buffer is sealed), never between them.
        # Reentrant: emitting may itself print (a console span exporter) on the same thread.
        self._output_lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def start(self) -> None:
        self.emit(events.status(S.EXECUTION_STATUS_STARTING), wait=False)
        self._thread = threading.Thread(
            target=self._main, name=f"kodosumi-{self.spec.execution_id}", daemon=True
        )
        self._thread.start()

    def _main(self) -> None:
        token = capture.bind(self)
        self.usage.cpu_start()
        try:
            loader.add_python_path(self.spec.python_path)
            target = loader.load(self.spec.entrypoint)
            adapter = adapter_for(target)
            self.check_cancelled()
            self.emit(events.status(S.EXECUTION_STATUS_RUNNING))
            value = adapter.run(target, self.ctx)
            self.check_cancelled()
            with self._output_lock:
                self._flush_output()
                self._end(
                    events.status(S.EXECUTION_STATUS_SUCCEEDED),
                    events.result(value if value is not None else self.result_value),
                )
        except (ExecutionCancelled, asyncio.CancelledError):
            self._finish_cancelled()
        except BaseException as exc:
            if self.cancel_requested:
                self._finish_cancelled()
            else:
                self._flush_output()
                error = events.error(exc)
                reason = f"{type(exc).__name__}: {exc}"
                if self.spec.attempt < self.spec.max_attempts:
                    reason = (
                        f"attempt {self.spec.attempt} of {self.spec.max_attempts} failed: {reason}"
                    )
                    self._end(events.status(S.EXECUTION_STATUS_RETRYING, reason), error)
                else:
                    self._end(events.status(S.EXECUTION_STATUS_FAILED, reason), error)
        finally:
            capture.unbind(token)
            self.files.close()

    def _finish_cancelled(self) -> None:
        self._flush_output()
        self._end(
            events.status(self.cancel_status or S.EXECUTION_STATUS_CANCELLED, self.cancel_reason)
        )

    def _end(
        self,
        status: event_pb2.Event,
        closing: event_pb2.Event | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """End the attempt: its usage, the closing result or error, the status.

        The usage goes before the closing event (counted in it already), so a result or
        error stays right before the status, where clients look for it.
        """
        if threading.current_thread() is self._thread:
            self.usage.cpu_stop()
        if closing is not None:
            self.usage.fold(closing)
        if not self.buffer.sealed:
            self.emit(self.usage.event(), wait=wait, metered=False)
        if closing is not None:
            self.emit(closing, wait=wait, metered=False)
        self.emit(status, wait=wait)

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise ExecutionCancelled(self.cancel_reason)

    def run_async(self, make_coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run an async flow on a private loop in this execution's thread."""
        loop = asyncio.new_event_loop()
        self._flow_loop = loop
        try:
            task = loop.create_task(make_coroutine())
            self._flow_task = task
            if self.cancel_requested:
                task.cancel()
            return loop.run_until_complete(task)
        finally:
            self._flow_task = None
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._flow_loop = None
                loop.close()

    def request_cancel(self, status: int, reason: str) -> bool:
        """Ask the flow to stop (cooperatively). False when the execution already ended."""
        if self.buffer.sealed:
            return False
        if not self.cancel_event.is_set():
            self.cancel_status, self.cancel_reason = status, reason
            self.cancel_event.set()
            with self._inputs_lock:
                for pending in self._pending.values():
                    pending.answered.set()
            loop, task = self._flow_loop, self._flow_task
            if loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)
            with self._hooks_lock:
                hooks = list(self._cancel_hooks.values())
                self._cancel_hooks.clear()
            for hook in hooks:
                self._run_hook(hook)
        return True

    def _run_hook(self, hook: Callable[[str], None]) -> None:
        # Hooks may block (a cancel RPC): never on the caller's thread, the control loop.
        threading.Thread(
            target=hook,
            args=(self.cancel_reason,),
            name=f"kodosumi-cancel-{self.spec.execution_id}",
            daemon=True,
        ).start()

    def on_cancel(self, hook: Callable[[str], None]) -> Callable[[], None]:
        """Call `hook(reason)` when the execution is cancelled (at once if it already is);
        returns a function that unregisters it."""
        key = id(hook)
        with self._hooks_lock:
            if not self.cancel_event.is_set():
                self._cancel_hooks[key] = hook
                return lambda: self._remove_hook(key)
        self._run_hook(hook)
        return lambda: None

    def _remove_hook(self, key: int) -> None:
        with self._hooks_lock:
            self._cancel_hooks.pop(key, None)

    def force_stop(self) -> None:
        """The grace period is over: interrupt the flow thread and end the stream now.

        An exception is injected into the thread (it fires at the next Python bytecode; a
        thread blocked in C code stays blocked and is abandoned); whatever it emits later is
        discarded because the terminal event seals the buffer.
        """
        if self.buffer.sealed:
            return
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(ExecutionCancelled)
            )
        reason = self.cancel_reason or "cancelled"
        grace = self.spec.cancel_grace_seconds
        self._end(
            events.status(
                self.cancel_status or S.EXECUTION_STATUS_CANCELLED,
                f"{reason} (did not stop within {grace:g}s; interrupted)",
            ),
            wait=False,
        )
        self.buffer.release()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- events ------------------------------------------------------------------------------

    def emit(self, event: event_pb2.Event, *, wait: bool = True, metered: bool = True) -> int:
        if metered:
            self.usage.fold(event)
        observe = self._observe
        if observe is not None:
            observe(event)  # stamps the event's trace and span ids
        return self.buffer.append(event, wait=wait)

    def output(self, stream: int, text: str) -> None:
        """Text written to stdout/stderr: complete lines become events, the rest waits."""
        with self._output_lock:
            pending = self._partial.get(stream, "") + text
            if "\n" not in pending:
                self._partial[stream] = pending
                return
            *lines, rest = pending.split("\n")
            self._partial[stream] = rest
            for line in lines:
                self.emit(events.output_line(stream, line.rstrip("\r")))

    def _flush_output(self) -> None:
        for stream, rest in list(self._partial.items()):
            if rest:
                self.emit(events.output_line(stream, rest))
        self._partial.clear()

    def log_record(self, message: str, levelno: int, logger: str) -> None:
        self.emit(events.log(message, levelno, logger))

    # -- human input -------------------------------------------------------------------------

    def request_input(
        self,
        prompt: str,
        *,
        kind: int,
        schema: dict[str, Any],
        timeout: float,
        default: Any,
        use_default: bool,
    ) -> Any:
        check_schema(schema)
        self.check_cancelled()
        request = PendingInput(uuid.uuid4().hex[:12], schema)
        with self._inputs_lock:
            self._pending[request.request_id] = request
            first = len(self._pending) == 1
        if first:
            self.emit(events.status(S.EXECUTION_STATUS_AWAITING_INPUT))
        self.emit(
            events.input_requested(
                request.request_id, kind, prompt, schema, timeout, default, use_default
            )
        )
        answered = request.answered.wait(timeout if timeout > 0 else None)
        self.check_cancelled()
        if answered:
            return request.value
        with self._inputs_lock:
            if request.answered.is_set():  # the answer raced the timeout and won
                return request.value
            del self._pending[request.request_id]
            remaining = len(self._pending)
        if not use_default:
            raise InputTimedOut(f"input request {request.request_id} timed out after {timeout:g}s")
        self.emit(events.input_provided(request.request_id, default, "", timed_out=True))
        if remaining == 0:
            self.emit(events.status(S.EXECUTION_STATUS_RUNNING))
        return default

    def provide_input(self, request_id: str, value: Any, provided_by: str) -> None:
        """Answer an open input request (called from the control loop, never blocks)."""
        with self._inputs_lock:
            if self.buffer.sealed:
                raise FailedPrecondition(
                    f"execution {self.spec.execution_id} already ended", reason="EXECUTION_FINISHED"
                )
            request = self._pending.get(request_id)
            if request is None:
                raise FailedPrecondition(
                    f"execution {self.spec.execution_id} awaits no input with request_id "
                    f"{request_id!r}",
                    reason="NO_INPUT_AWAITED",
                )
            violations = schema_violations(request.schema, value, root="value")
            if violations:
                raise InvalidArgument(
                    "value does not match the input request's schema: "
                    + "; ".join(f"{v.field}: {v.description}" for v in violations),
                    violations=violations,
                    reason="INVALID_INPUT_VALUE",
                )
            request.value = value
            del self._pending[request_id]
            remaining = len(self._pending)
            self.emit(events.input_provided(request_id, value, provided_by), wait=False)
            if remaining == 0:
                self.emit(events.status(S.EXECUTION_STATUS_RUNNING), wait=False)
            request.answered.set()

    def open_requests(self) -> list[str]:
        with self._inputs_lock:
            return list(self._pending)
