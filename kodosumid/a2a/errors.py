"""A2A's errors (specification §3.3.2, §5.4, §10.6) as catalog errors.

Each carries `ErrorInfo(domain="a2a-protocol.org", reason=...)` with the gRPC status the
specification maps it to, so the guard answers them like any other catalog error and the
a2a-sdk client raises its matching exception. `translate` turns the node's own domain errors
into these where A2A has a word for them; the rest (permissions, quotas, availability) keep
their catalog status and reason.
"""

from __future__ import annotations

from kodosumi.errors import FieldViolation, InvalidArgument, KodosumiError

A2A_DOMAIN = "a2a-protocol.org"


class A2AError(KodosumiError):
    domain = A2A_DOMAIN


class TaskNotFound(A2AError):
    status = "NOT_FOUND"
    default_reason = "TASK_NOT_FOUND"


class TaskNotCancelable(A2AError):
    status = "FAILED_PRECONDITION"
    default_reason = "TASK_NOT_CANCELABLE"


class PushNotificationNotSupported(A2AError):
    status = "FAILED_PRECONDITION"
    default_reason = "PUSH_NOTIFICATION_NOT_SUPPORTED"


class UnsupportedOperation(A2AError):
    status = "FAILED_PRECONDITION"
    default_reason = "UNSUPPORTED_OPERATION"


class ContentTypeNotSupported(A2AError):
    status = "INVALID_ARGUMENT"
    default_reason = "CONTENT_TYPE_NOT_SUPPORTED"


class VersionNotSupported(A2AError):
    status = "FAILED_PRECONDITION"
    default_reason = "VERSION_NOT_SUPPORTED"


class InvalidParams(InvalidArgument):
    """A bad request field (with `BadRequest` field violations), as the SDK's InvalidParams."""

    domain = A2A_DOMAIN
    default_reason = "INVALID_PARAMS"

    @classmethod
    def field(cls, name: str, description: str) -> InvalidParams:
        return cls(f"{name}: {description}", violations=[FieldViolation(name, description)])


def translate(error: KodosumiError, task_id: str = "", *, cancelling: bool = False) -> Exception:
    """The A2A error for a domain error of the node's executions (or the error itself).

    Another user's execution is TASK_NOT_FOUND: A2A servers must not reveal tasks the
    caller may not see (§3.3.2), unlike the node's own API, which says PERMISSION_DENIED.
    """
    if isinstance(error, A2AError | InvalidParams):
        return error
    reason = error.reason
    if reason in ("EXECUTION_NOT_FOUND", "NOT_YOUR_EXECUTION"):
        return TaskNotFound(f"no task {task_id!r}" if task_id else "no such task")
    if reason == "EXECUTION_FINISHED":
        if cancelling:
            return TaskNotCancelable(f"task {task_id} already ended")
        return UnsupportedOperation(f"task {task_id} already ended; it takes no more messages")
    if reason == "NO_INPUT_AWAITED":
        return UnsupportedOperation(error.message)
    if reason == "FLOW_NOT_FOUND":
        return InvalidParams.field("tenant", error.message)
    if isinstance(error, InvalidArgument):
        # Launch inputs and input answers: the fields are named as the node names them
        # (`inputs.x`, `value.y`); the node's reason stays in the metadata.
        converted = InvalidParams(error.message, violations=error.violations)
        converted.metadata = {"kodosumi_reason": reason}
        return converted
    return error
