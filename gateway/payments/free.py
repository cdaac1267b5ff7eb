"""The backend of services without a price: nothing is asked, funds count as locked."""

from __future__ import annotations

from gateway.config import ServiceConfig
from gateway.jobs import Job
from gateway.payments.backend import LockState, PaymentRequest


class FreeBackend:
    name = "free"

    async def request(self, job: Job, service: ServiceConfig) -> PaymentRequest:
        return PaymentRequest(f"free:{job.job_id}", {"blockchainIdentifier": ""})

    async def lock_state(self, job: Job) -> LockState:
        return LockState.LOCKED

    async def submit_result(self, job: Job, result_hash: str) -> None:
        return None

    async def release(self, job: Job, reason: str) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None
