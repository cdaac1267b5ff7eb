"""A2A task states and our execution statuses, each in terms of the other.

Every status has a state (`STATE_OF_STATUS`, a test pins it); `STATUSES_OF_STATE` reads the
table backwards for ListTasks' status filter. Pure tables, no gRPC.
"""

from __future__ import annotations

from a2a.types import a2a_pb2 as a2a

from kodosumi.v1 import event_pb2

S = event_pb2
STATE_OF_STATUS: dict[int, int] = {
    S.EXECUTION_STATUS_PENDING: a2a.TASK_STATE_SUBMITTED,
    S.EXECUTION_STATUS_STARTING: a2a.TASK_STATE_WORKING,
    S.EXECUTION_STATUS_RUNNING: a2a.TASK_STATE_WORKING,
    S.EXECUTION_STATUS_RETRYING: a2a.TASK_STATE_WORKING,
    # The peer running a relayed execution does not answer: still working as far as anyone
    # knows (the update carries the reason); FAILED follows after the grace.
    S.EXECUTION_STATUS_PEER_LOST: a2a.TASK_STATE_WORKING,
    S.EXECUTION_STATUS_AWAITING_INPUT: a2a.TASK_STATE_INPUT_REQUIRED,
    S.EXECUTION_STATUS_SUCCEEDED: a2a.TASK_STATE_COMPLETED,
    S.EXECUTION_STATUS_FAILED: a2a.TASK_STATE_FAILED,
    S.EXECUTION_STATUS_TIMED_OUT: a2a.TASK_STATE_FAILED,
    S.EXECUTION_STATUS_CANCELLED: a2a.TASK_STATE_CANCELED,
}
TERMINAL_STATES = frozenset(
    {
        a2a.TASK_STATE_COMPLETED,
        a2a.TASK_STATE_FAILED,
        a2a.TASK_STATE_CANCELED,
        a2a.TASK_STATE_REJECTED,
    }
)
INTERRUPTED_STATES = frozenset({a2a.TASK_STATE_INPUT_REQUIRED, a2a.TASK_STATE_AUTH_REQUIRED})
# Our statuses per A2A state (ListTasks' status filter).
STATUSES_OF_STATE: dict[int, list[int]] = {}
for _status, _state in STATE_OF_STATUS.items():
    STATUSES_OF_STATE.setdefault(_state, []).append(_status)


def state_of(status: int) -> int:
    return STATE_OF_STATUS.get(status, a2a.TASK_STATE_UNSPECIFIED)
