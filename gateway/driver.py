"""Drives every job to its end: payment -> launch -> follow -> settle.

One task per job with work left (`kick`), started again for every such job when the gateway
starts, so a restart picks up where the last process stopped. Each step is written to the
job's row (compare-and-set, job_store.py) before the next begins:

- `awaiting_payment`: ask the backend whether the funds are locked (every poll interval);
  locked -> `launching`; past the pay-by time -> `failed` (nothing to release).
- `launching`: launch the flow on its node and write the execution id. A job that was
  `launching` before this process started may have been launched already: it looks for its
  execution first (node_link.find_launched). A node that is down: retry until
  `node_wait_seconds` (policy `wait`) or fail at once (`fail`).
- `running` / `awaiting_input`: follow the execution's events (job_fold.py) into the row.
- `completed`: submit the MIP-004 output hash to the backend, once.
- `failed`: release the funds, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.config import GatewayConfig, ServiceConfig
from gateway.input_hash import output_hash
from gateway.job_fold import ExecutionView, apply
from gateway.job_store import JobStore
from gateway.jobs import Job, JobState, PaymentState
from gateway.node_link import KodoclientError, NodeLink
from gateway.payments.backend import LockState, PaymentBackend, PaymentError, PaymentUnavailable
from kodosumi.v1 import flow_pb2

__all__ = ["JobDriver", "Service"]

log = logging.getLogger(__name__)

# gRPC answers that mean "the node is not there now", not "the launch is wrong".
_NODE_DOWN = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class Service:
    """One exposed flow at run time: its configuration, node link, backend, input schema."""

    config: ServiceConfig
    link: NodeLink
    backend: PaymentBackend
    schema: dict[str, Any]
    fields: list[dict[str, Any]]
    # The flow as its node describes it; a priced one is launched with a quote of the node.
    flow: flow_pb2.Flow | None = None

    @property
    def priced(self) -> bool:
        return self.flow is not None and self.flow.HasField("price")


class JobDriver:
    def __init__(
        self,
        store: JobStore,
        services: dict[str, Service],
        config: GatewayConfig,
        *,
        link_of_file: Callable[[Job, str], str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.services = services
        self.config = config
        self.link_of_file = link_of_file
        self.now = now
        self.started_at = now()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    async def start(self) -> None:
        for job in await self.store.active():
            self.kick(job.job_id)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def kick(self, job_id: str) -> None:
        """Make sure a task drives `job_id` (one at most)."""
        if self._stopping or job_id in self._tasks:
            return
        task = asyncio.create_task(self._drive(job_id), name=f"job {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _save(self, job: Job, **changes: Any) -> Job:
        """Write `changes`; if the row moved meanwhile, apply them to the fresh row."""
        while True:
            saved = await self.store.update(job, **changes)
            if saved is not None:
                return saved
            fresh = await self.store.get(job.job_id)
            assert fresh is not None
            job = fresh

    async def _drive(self, job_id: str) -> None:
        try:
            while True:
                job = await self.store.get(job_id)
                if job is None or not await self._step(job):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            # Never lose a job to a bug: log it, and the next start tries again.
            log.exception("job %s: the driver stopped", job_id)

    async def _step(self, job: Job) -> bool:
        """One step of `job`; False when nothing is left to do."""
        service = self.services.get(job.service)
        if service is None:
            log.warning("job %s: service %r is no longer configured", job.job_id, job.service)
            return False
        try:
            if job.state is JobState.AWAITING_PAYMENT:
                return await self._await_payment(job, service)
            if job.state is JobState.LAUNCHING:
                return await self._launch(job, service)
            if job.state in (JobState.RUNNING, JobState.AWAITING_INPUT):
                return await self._follow(job, service)
            if job.state is JobState.COMPLETED and job.payment is PaymentState.LOCKED:
                await service.backend.submit_result(job, job.result_hash)
                await self._save(job, payment=PaymentState.RESULT_SUBMITTED)
                return False
            if job.state is JobState.FAILED and job.payment in (
                PaymentState.REQUESTED,
                PaymentState.LOCKED,
            ):
                await service.backend.release(job, job.reason)
                await self._save(job, payment=PaymentState.RELEASED)
                return False
            return False
        except PaymentUnavailable as e:
            log.warning("job %s: %s; retrying in %.0f s", job.job_id, e, e.retry_after)
            await asyncio.sleep(min(e.retry_after, self.config.poll_interval_seconds * 5))
            return True
        except PaymentError as e:
            if job.state.terminal:
                log.error("job %s: settling failed: %s", job.job_id, e)
                return False
            await self._save(job, state=JobState.FAILED, reason=str(e))
            return True

    async def _await_payment(self, job: Job, service: Service) -> bool:
        if job.payment is PaymentState.NONE:
            return False  # start_job has not recorded its request: it will kick again
        lock = await service.backend.lock_state(job)
        if lock is LockState.LOCKED:
            await self._save(
                job, payment=PaymentState.LOCKED, state=JobState.LAUNCHING, launching_at=self.now()
            )
            return True
        if lock is LockState.PENDING:
            if self.now() - job.created_at > self.config.pay_timeout_seconds:
                await self._save(job, state=JobState.FAILED, reason="PAYMENT_TIMEOUT")
                return True
            await asyncio.sleep(self.config.poll_interval_seconds)
            return True
        reason = "PAYMENT_EXPIRED" if lock is LockState.EXPIRED else "PAYMENT_INVALID"
        await self._save(job, state=JobState.FAILED, reason=reason)
        return True

    async def _launch(self, job: Job, service: Service) -> bool:
        flow = service.config.flow
        quote_id = str(job.payment_info.get("quote_id", ""))
        try:
            execution_id = None
            if job.launching_at < self.started_at and not quote_id:
                # Launched by an earlier process that died before it wrote the id down?
                execution_id = await self._find(job, service)
            if execution_id is None and service.priced and not quote_id:
                # The quote is written down before the launch: a repeat after a crash uses the
                # same one, which the node takes once (QUOTE_USED), so the run happens once.
                assert service.flow is not None
                quote_id = await service.link.quote(service.flow, job.input_data)
                info = {**job.payment_info, "quote_id": quote_id}
                await self._save(job, payment_info=info)
                return True
            if execution_id is None:
                execution_id = await service.link.launch(flow, job.input_data, quote_id)
        except KodoclientError as e:
            if e.reason == "QUOTE_USED":
                execution_id = await self._find(job, service)
                if execution_id is not None:
                    await self._save(job, execution_id=execution_id, state=JobState.RUNNING)
                    return True
            if e.reason == "QUOTE_EXPIRED":
                info = {k: v for k, v in job.payment_info.items() if k != "quote_id"}
                await self._save(job, payment_info=info)
                return True
            if e.code in _NODE_DOWN:
                waited = self.now() - job.launching_at
                if self.config.node_down == "wait" and waited < self.config.node_wait_seconds:
                    await asyncio.sleep(min(5.0, self.config.poll_interval_seconds * 2))
                    return True
                reason = f"NODE_UNAVAILABLE: node {service.link.name!r} ({e.code.name})"
            else:
                reason = f"LAUNCH_REFUSED: {e}"
            await self._save(job, state=JobState.FAILED, reason=reason)
            return True
        await self._save(job, execution_id=execution_id, state=JobState.RUNNING)
        return True

    async def _find(self, job: Job, service: Service) -> str | None:
        claimed = await self.store.claimed_executions()
        return await service.link.find_launched(
            service.config.flow, job.input_data, job.launching_at, claimed
        )

    async def _follow(self, job: Job, service: Service) -> bool:
        view = ExecutionView()
        try:
            async for event in service.link.watch(job.execution_id):
                if not apply(view, event):
                    continue
                job = await self._write_view(job, view)
                if view.terminal:
                    break
        except KodoclientError as e:
            if e.code in _NODE_DOWN:
                await asyncio.sleep(self.config.poll_interval_seconds)
                return True
            job = await self._save(
                job, state=JobState.FAILED, reason=f"EXECUTION_LOST: {e}", open_inputs=()
            )
        return True

    async def _write_view(self, job: Job, view: ExecutionView) -> Job:
        changes: dict[str, Any] = {
            "state": view.state,
            "node_status": view.node_status or job.node_status,
            "open_inputs": tuple(view.open_inputs.values()),
        }
        if view.terminal:
            view.complete = [a for a in view.complete if a in view.inline]
            for artifact_id in view.complete:
                name, media, data = view.inline[artifact_id]
                await self.store.put_artifact(job.job_id, artifact_id, name, media, bytes(data))
            result = view.result(
                lambda file_id: self.link_of_file(job, file_id),
                lambda artifact_id: self.link_of_file(job, f"artifacts/{artifact_id}"),
            )
            changes["result"] = result
            changes["result_hash"] = output_hash(result, job.purchaser)
            changes["reason"] = view.reason
        if all(getattr(job, k) == v for k, v in changes.items()):
            return job
        return await self._save(job, **changes)
