"""A2A's task operations over the node's executions (no gRPC here).

Tasks are executions: a send launches one through the same `launch` as `LaunchExecution`
(schema checks, allow-lists, quotas, peer forwarding), streams read the same `watch`
(stored before visible, gapless), answers go through `provide_input`, cancels through
`cancel`. Nothing is stored twice: a task is rebuilt from its execution's events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from a2a.types import a2a_pb2 as a2a

from kodosumi.authz import Principal
from kodosumi.errors import KodosumiError, NotFound
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import event_pb2
from kodosumid.a2a.errors import InvalidParams, TaskNotFound, UnsupportedOperation, translate
from kodosumid.a2a.files import FileStorePort, split_file_parts, store_file_parts
from kodosumid.a2a.mapping import (
    STATUSES_OF_STATE,
    TaskFold,
    check_parts,
    input_answer,
    launch_inputs,
    state_of,
    text_part,
)
from kodosumid.catalog import Catalog
from kodosumid.convert import watch_responses
from kodosumid.event_store import ExecutionRecord, Page
from kodosumid.quotas import Quotas, launch_within

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_COUNT_PAGE = 500


class Executions(Protocol):
    """The node's execution facade, as the servicers call it."""

    async def launch(
        self,
        principal: Principal,
        flow_name: str,
        inputs: dict[str, Any],
        *,
        forwarded: bool = False,
        parent_execution_id: str = "",
        files: dict[str, str] | None = None,
    ) -> ExecutionRecord: ...

    async def get(self, principal: Principal, execution_id: str) -> ExecutionRecord: ...

    async def list_executions(
        self,
        principal: Principal,
        *,
        statuses: list[int],
        flow: str,
        page_size: int,
        page_token: str,
    ) -> Page: ...

    def watch(
        self, principal: Principal, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]: ...

    async def cancel(
        self, principal: Principal, execution_id: str, reason: str
    ) -> ExecutionRecord: ...

    async def provide_input(
        self, principal: Principal, execution_id: str, request_id: str, value: Any
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class TaskLimits:
    # A part of a message larger than this is refused (INVALID_PARAMS naming the part).
    max_part_bytes: int = 1024 * 1024
    # How long CancelTask waits for the cancelled status before answering the task as it is.
    cancel_wait_seconds: float = 10.0


class A2ATasks:
    def __init__(
        self,
        executions: Executions,
        catalog: Catalog,
        node_id: str,
        limits: TaskLimits,
        quotas: Quotas,
    ) -> None:
        self.executions = executions
        self.catalog = catalog
        self.node_id = node_id
        self.limits = limits
        # The same per-identity quotas as the flow API: launches here are launches there.
        self.quotas = quotas
        # The node's file store: file parts in, output files out (None: no file parts).
        self.files: FileStorePort | None = None

    # -- reading ------------------------------------------------------------------------------

    async def visible(
        self, principal: Principal, task_id: str, tenant: str = ""
    ) -> ExecutionRecord:
        if not task_id:
            raise InvalidParams.field("id", "required")
        try:
            record = await self.executions.get(principal, task_id)
        except KodosumiError as e:
            raise translate(e, task_id) from None
        if tenant and record.flow != tenant:
            raise TaskNotFound(f"no task {task_id!r} for tenant {tenant!r}")
        return record

    def fold_for(self, record: ExecutionRecord, *, keep_artifacts: bool = True) -> TaskFold:
        node_id = record.node_id or self.node_id
        return TaskFold(record.execution_id, record.flow, node_id, keep_artifacts=keep_artifacts)

    async def snapshot(
        self, principal: Principal, record: ExecutionRecord, *, keep_artifacts: bool = True
    ) -> TaskFold:
        """The task as its stored events describe it (up to the record's last `seq`)."""
        fold = self.fold_for(record, keep_artifacts=keep_artifacts)
        if record.last_seq <= 0:
            return fold
        stream = self.executions.watch(principal, record.execution_id, 0)
        try:
            async for batch in stream:
                fold.apply_batch(parsed(batch))
                if fold.last_seq >= record.last_seq:
                    break
        except KodosumiError as e:
            raise translate(e, record.execution_id) from None
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return fold

    async def get_task(
        self, principal: Principal, task_id: str, tenant: str, history_length: int | None
    ) -> a2a.Task:
        record = await self.visible(principal, task_id, tenant)
        return (await self.snapshot(principal, record)).task(history_length)

    async def follow(
        self,
        principal: Principal,
        record: ExecutionRecord,
        fold: TaskFold,
        *,
        stop_when_interrupted: bool,
    ) -> AsyncIterator[a2a.StreamResponse]:
        """The Task as of the record first, then every later update, from one watch (so
        nothing falls between them), until the task ends (or waits for input)."""
        snapshot_seq = record.last_seq
        sent_task = False
        stream = self.executions.watch(principal, record.execution_id, 0)
        try:
            async for batch in stream:
                events = parsed(batch)
                live = [e for e in events if e.seq > snapshot_seq]
                fold.apply_batch(events[: len(events) - len(live)])  # in the Task's snapshot
                if not sent_task and (live or fold.last_seq >= snapshot_seq):
                    sent_task = True
                    yield task_response(fold.task())
                for update in fold.apply_batch(live):
                    yield update
                if fold.terminal or (stop_when_interrupted and fold.interrupted):
                    return
        except KodosumiError as e:
            raise translate(e, record.execution_id) from None
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        if not sent_task:
            yield task_response(fold.task())

    # -- sending ------------------------------------------------------------------------------

    def _flow_name(self, tenant: str, message: a2a.Message) -> str:
        if tenant:
            return tenant
        skill = message.metadata.fields.get("skill")
        if skill is not None and skill.WhichOneof("kind") == "string_value":
            return skill.string_value
        flows = self.catalog.list()
        if len(flows) == 1:
            return flows[0].name
        raise InvalidParams.field(
            "tenant", "name the flow: the tenant of its card, or the message metadata `skill`"
        )

    async def send(
        self, principal: Principal, request: a2a.SendMessageRequest
    ) -> tuple[ExecutionRecord, TaskFold, bool]:
        """Start a task or answer one: the execution, its task so far, and whether the
        caller's stream should stop at the next interruption."""
        if not request.HasField("message"):
            raise InvalidParams.field("message", "required")
        message = request.message
        check_parts(message, self.limits.max_part_bytes)
        if message.task_id:
            return await self._answer(principal, request.tenant, message)
        if message.context_id:
            raise InvalidParams.field(
                "message.context_id",
                "this agent assigns context ids (a task's context id is its id); "
                "send a task id to continue a task",
            )
        flow_name = self._flow_name(request.tenant, message)
        try:
            flow = self.catalog.get(flow_name)
            schema, flow_limit = flow.input_schema, flow.max_input_bytes
        except NotFound:
            # A peer's flow: launch forwards it; the peer checks inputs and limits.
            schema, flow_limit = {}, 0
        # File parts become the execution's input files (kodosumid/a2a/files.py).
        message, file_parts = split_file_parts(message)
        inputs = launch_inputs(message, schema) if message.parts else {}
        try:
            files = await store_file_parts(self.files, principal, file_parts)
            record = await launch_within(
                self.quotas,
                principal,
                inputs_bytes=dict_to_struct(inputs).ByteSize(),
                flow_limit=flow_limit,
                launch=lambda: self.executions.launch(principal, flow_name, inputs, files=files),
            )
        except KodosumiError as e:
            raise translate(e) from None
        return record, self.fold_for(record), True

    async def _answer(
        self, principal: Principal, tenant: str, message: a2a.Message
    ) -> tuple[ExecutionRecord, TaskFold, bool]:
        task_id = message.task_id
        record = await self.visible(principal, task_id, tenant)
        if message.context_id and message.context_id != task_id:
            raise InvalidParams.field(
                "message.context_id", f"task {task_id} has context id {task_id}"
            )
        if record.terminal:
            raise UnsupportedOperation(f"task {task_id} already ended; it takes no more messages")
        fold = await self.snapshot(principal, record)
        request_id, value = input_answer(message, fold.open_requests)
        try:
            await self.executions.provide_input(principal, task_id, request_id, value)
        except KodosumiError as e:
            raise translate(e, task_id) from None
        fresh = self.fold_for(record)
        fresh.answered.add(request_id)
        return record, fresh, True

    # -- listing and cancelling -----------------------------------------------------------------

    async def list_tasks(
        self, principal: Principal, request: a2a.ListTasksRequest
    ) -> a2a.ListTasksResponse:
        if request.page_size < 0:
            raise InvalidParams.field("page_size", "must not be negative")
        if request.HasField("history_length") and request.history_length < 0:
            raise InvalidParams.field("history_length", "must not be negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        statuses: list[int] = []
        if request.status:
            statuses = STATUSES_OF_STATE.get(request.status, [])
            if not statuses:
                raise InvalidParams.field("status", f"no task is ever in state {request.status}")
        after_ns = (
            request.status_timestamp_after.ToNanoseconds()
            if request.HasField("status_timestamp_after")
            else 0
        )
        history = request.history_length if request.HasField("history_length") else 0
        if request.context_id:
            # A task's context id is its id: at most one task.
            try:
                records = [await self.visible(principal, request.context_id, request.tenant)]
            except (TaskNotFound, InvalidParams):
                records = []
            records = [
                r
                for r in records
                if (not statuses or r.status in statuses) and _updated_ns(r) >= after_ns
            ]
            page = Page(records, "")
            total = len(records)
        else:
            page = await self._page(principal, statuses, request, page_size, after_ns)
            total = await self._count(principal, statuses, request.tenant, after_ns)
        tasks = []
        for record in page.executions:
            if request.include_artifacts or history:
                fold = await self.snapshot(principal, record)
                tasks.append(fold.task(history, include_artifacts=request.include_artifacts))
            else:
                tasks.append(task_of_record(record, self.node_id))
        return a2a.ListTasksResponse(
            tasks=tasks, next_page_token=page.next_token, page_size=page_size, total_size=total
        )

    async def _page(
        self,
        principal: Principal,
        statuses: list[int],
        request: a2a.ListTasksRequest,
        page_size: int,
        after_ns: int,
    ) -> Page:
        try:
            page = await self.executions.list_executions(
                principal,
                statuses=statuses,
                flow=request.tenant,
                page_size=page_size,
                page_token=request.page_token,
            )
        except KodosumiError as e:
            if isinstance(e, InvalidParams) or e.status != "INVALID_ARGUMENT":
                raise
            raise InvalidParams.field("page_token", e.message) from None
        if after_ns:
            page = Page([r for r in page.executions if _updated_ns(r) >= after_ns], page.next_token)
        return page

    async def _count(
        self, principal: Principal, statuses: list[int], flow: str, after_ns: int
    ) -> int:
        """`total_size`: every task the filters select (pages through the listing)."""
        total, token = 0, ""
        while True:
            page = await self.executions.list_executions(
                principal, statuses=statuses, flow=flow, page_size=_COUNT_PAGE, page_token=token
            )
            total += sum(1 for r in page.executions if _updated_ns(r) >= after_ns)
            token = page.next_token
            if not token:
                return total

    async def cancel(self, principal: Principal, task_id: str, tenant: str) -> a2a.Task:
        record = await self.visible(principal, task_id, tenant)
        try:
            record = await self.executions.cancel(principal, task_id, "")
        except KodosumiError as e:
            raise translate(e, task_id, cancelling=True) from None
        fold = self.fold_for(record)
        # Answer with the cancelled task when it stops within the wait, else as it is now.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.cancel_wait_seconds):
                async for _ in self.follow(principal, record, fold, stop_when_interrupted=False):
                    pass
        return fold.task()


def parsed(batch: list[bytes]) -> list[event_pb2.Event]:
    """The stored events of a batch, parsed in one go per bounded frame (as WatchExecution
    does): one parse of many events costs far less than one parse each."""
    return [event for frame in watch_responses(batch) for event in frame.events]


def task_response(task: a2a.Task) -> a2a.StreamResponse:
    response = a2a.StreamResponse()
    response.task.CopyFrom(task)
    return response


def _updated_ns(record: ExecutionRecord) -> int:
    return max(record.end_ns, record.start_ns, record.create_ns)


def task_of_record(record: ExecutionRecord, node_id: str) -> a2a.Task:
    """A task from its execution row alone (no events read): state, time and reason."""
    task = a2a.Task(id=record.execution_id, context_id=record.execution_id)
    task.status.state = state_of(record.status)  # type: ignore[assignment]
    task.status.timestamp.FromNanoseconds(_updated_ns(record))
    if record.status_reason:
        message = task.status.message
        message.message_id = f"{record.execution_id}-{record.last_seq}"
        message.task_id = message.context_id = record.execution_id
        message.role = a2a.ROLE_AGENT
        message.parts.append(text_part(record.status_reason))
    task.metadata.update(
        {
            "flow": record.flow,
            "status": event_pb2.ExecutionStatus.Name(record.status),  # type: ignore[arg-type]
            "node_id": record.node_id or node_id,
        }
    )
    return task
