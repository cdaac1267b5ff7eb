"""The CLI's exit codes: one registry, each code with the help text `koco --help` prints.

Scripts branch on these, so a code never changes meaning once released. Codes below 10
say the command itself could not do its work; codes from 10 say how the execution it
followed ended. 0 after `run`/`watch` means the execution SUCCEEDED, nothing less.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import grpc

from kodoclient.errors import ConfigError, KodoclientError
from kodosumi.v1 import event_pb2


@dataclass(frozen=True, slots=True)
class ExitCode:
    code: int
    name: str
    help: str


OK = ExitCode(0, "OK", "Done; after run/watch: the execution SUCCEEDED.")
ERROR = ExitCode(1, "ERROR", "The node answered with an error no other code covers.")
USAGE = ExitCode(
    2, "USAGE", "Bad command line or bad input (INVALID_ARGUMENT, e.g. inputs violate the schema)."
)
NOT_FOUND = ExitCode(3, "NOT_FOUND", "No such flow or execution (NOT_FOUND).")
UNREACHABLE = ExitCode(
    4,
    "UNREACHABLE",
    "No node reachable: nothing listens, the TLS handshake was rejected, no credentials, "
    "or a call ran out of time.",
)
DENIED = ExitCode(5, "DENIED", "The node refused the caller (PERMISSION_DENIED, UNAUTHENTICATED).")
CONFLICT = ExitCode(
    6,
    "CONFLICT",
    "The execution is not in a state that allows it: already finished, or it awaits no such "
    "input; or the flow is unavailable (its module or spec is broken) (FAILED_PRECONDITION).",
)
BUSY = ExitCode(
    7,
    "BUSY",
    "The node runs as many executions as it may, or a quota of the caller is used up "
    "(RESOURCE_EXHAUSTED; the message names the quota and its limit).",
)
FAILED = ExitCode(10, "FAILED", "The execution FAILED.")
CANCELLED = ExitCode(11, "CANCELLED", "The execution was CANCELLED.")
TIMED_OUT = ExitCode(12, "TIMED_OUT", "The execution TIMED_OUT.")
INCOMPLETE = ExitCode(
    13, "INCOMPLETE", "The watch ended before the execution did (its status is not terminal)."
)
INTERRUPTED = ExitCode(
    130,
    "INTERRUPTED",
    "Interrupted (Ctrl-C). The execution keeps running on a standing node; an embedded "
    "node stops with the command.",
)

REGISTRY: tuple[ExitCode, ...] = (
    OK,
    ERROR,
    USAGE,
    NOT_FOUND,
    UNREACHABLE,
    DENIED,
    CONFLICT,
    BUSY,
    FAILED,
    CANCELLED,
    TIMED_OUT,
    INCOMPLETE,
    INTERRUPTED,
)

_BY_RPC_CODE: dict[grpc.StatusCode, ExitCode] = {
    grpc.StatusCode.OK: OK,
    grpc.StatusCode.INVALID_ARGUMENT: USAGE,
    grpc.StatusCode.OUT_OF_RANGE: USAGE,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE: UNREACHABLE,
    # A unary deadline almost always means the node is gone or wedged, not the call.
    grpc.StatusCode.DEADLINE_EXCEEDED: UNREACHABLE,
    grpc.StatusCode.PERMISSION_DENIED: DENIED,
    grpc.StatusCode.UNAUTHENTICATED: DENIED,
    grpc.StatusCode.FAILED_PRECONDITION: CONFLICT,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BUSY,
}

_BY_STATUS: dict[int, ExitCode] = {
    event_pb2.EXECUTION_STATUS_SUCCEEDED: OK,
    event_pb2.EXECUTION_STATUS_FAILED: FAILED,
    event_pb2.EXECUTION_STATUS_CANCELLED: CANCELLED,
    event_pb2.EXECUTION_STATUS_TIMED_OUT: TIMED_OUT,
}


def for_rpc_code(code: grpc.StatusCode) -> ExitCode:
    return _BY_RPC_CODE.get(code, ERROR)


def for_error(error: KodoclientError) -> ExitCode:
    if isinstance(error, ConfigError):
        # Missing dev credentials means no local node ever ran: nothing to reach.
        return UNREACHABLE if error.reason == "NO_CREDENTIALS" else USAGE
    return for_rpc_code(error.code)


def for_execution_status(status: int) -> ExitCode:
    """How `run`/`watch` exit for the status the execution was last seen in."""
    return _BY_STATUS.get(status, INCOMPLETE)


def help_table(width: int = 90) -> str:
    """The registry as aligned text, help wrapped under itself (for --help and docs)."""
    indent = " " * 19
    return "\n".join(
        textwrap.fill(
            c.help, width, initial_indent=f"{c.code:>4}  {c.name:<12} ", subsequent_indent=indent
        )
        for c in REGISTRY
    )
