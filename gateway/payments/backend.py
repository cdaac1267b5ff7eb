"""The settlement interface the gateway drives a job's money through.

    request(job, service)  -> PaymentRequest   ask for the price (once per job)
    lock_state(job)        -> LockState        has the purchaser locked the funds?
    submit_result(job)                          completion: the MIP-004 output hash
    release(job, reason)                        failure or timeout: the funds go back

A backend that cannot be reached raises `PaymentUnavailable` (the gateway answers 503 with
Retry-After and launches nothing); one that refuses raises `PaymentRefused` (a job fails with
its message). Calls must be safe to repeat: the gateway records each step before and after
it, and after a crash repeats a step whose end it did not record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from gateway.config import ServiceConfig
from gateway.jobs import Job

__all__ = [
    "LockState",
    "PaymentBackend",
    "PaymentError",
    "PaymentRefused",
    "PaymentRequest",
    "PaymentUnavailable",
]


class PaymentError(Exception):
    """A backend could not do what was asked."""


class PaymentUnavailable(PaymentError):
    """The backend cannot be reached now; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PaymentRefused(PaymentError):
    """The backend refused the request (bad identifiers, wrong state, no funds): not worth
    repeating. `status` is the HTTP answer start_job gives (402: the buyer cannot pay; 401:
    no buyer; 502: the backend refused the gateway's own request)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class LockState(StrEnum):
    PENDING = "pending"  # nothing locked yet, still in time
    LOCKED = "locked"  # the funds are locked for this job
    EXPIRED = "expired"  # the pay-by time passed without funds
    INVALID = "invalid"  # funds arrived but do not match (amount, datum)


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A backend's answer to `request`: its reference, and the fields MIP-003's start_job
    answer carries (`blockchainIdentifier`, `payByTime`, `submitResultTime`, ...)."""

    ref: str
    info: dict[str, Any] = field(default_factory=dict)


class PaymentBackend(Protocol):
    name: str

    async def request(self, job: Job, service: ServiceConfig) -> PaymentRequest: ...

    async def lock_state(self, job: Job) -> LockState: ...

    async def submit_result(self, job: Job, result_hash: str) -> None: ...

    async def release(self, job: Job, reason: str) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
