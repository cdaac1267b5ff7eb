"""The gateway's jobs: what a purchaser bought, where its payment stands, which execution
runs it, and the MIP-003 state it shows.

A job moves through states that each say what the gateway does next:

    awaiting_payment -> launching -> running <-> awaiting_input -> completed
            |               |          |                              (result submitted)
            +---------------+----------+--> failed                    (funds released)

`payment` says where the money is: `none` (not yet requested), `requested`, `locked`,
`result_submitted`, `released`. Every change is a compare-and-set on the job's `revision`
in the store (job_store.py), so a transition happens once even when two tasks or a restarted
gateway try it again: that is the idempotency key of every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = ["Job", "JobState", "PaymentState", "mip_status"]


class JobState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    LAUNCHING = "launching"
    RUNNING = "running"
    AWAITING_INPUT = "awaiting_input"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED)


class PaymentState(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    LOCKED = "locked"
    RESULT_SUBMITTED = "result_submitted"
    RELEASED = "released"


# MIP-003 knows five states; `launching` is `running` to a purchaser (funds are locked and
# the gateway is starting the flow).
_MIP = {
    JobState.AWAITING_PAYMENT: "awaiting_payment",
    JobState.LAUNCHING: "running",
    JobState.RUNNING: "running",
    JobState.AWAITING_INPUT: "awaiting_input",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
}


def mip_status(state: JobState) -> str:
    return _MIP[state]


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    service: str
    purchaser: str
    input_data: dict[str, Any]
    input_hash: str
    # The ledger account that pays (the local ledger; "" where the payment network knows).
    buyer: str = ""
    state: JobState = JobState.AWAITING_PAYMENT
    payment: PaymentState = PaymentState.NONE
    # The backend's reference (Masumi: the blockchainIdentifier) and what start_job showed.
    payment_ref: str = ""
    payment_info: dict[str, Any] = field(default_factory=dict)
    execution_id: str = ""
    node_status: str = ""
    # Open input requests of the execution: [{request_id, prompt, schema}], oldest first.
    open_inputs: tuple[dict[str, Any], ...] = ()
    result: str = ""
    result_hash: str = ""
    reason: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    launching_at: float = 0.0
    revision: int = 0

    def but(self, **changes: Any) -> Job:
        return replace(self, **changes)
