"""Translate catalog errors to `google.rpc.Status` and back."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from kodosumi.bounded import bounded as cut
from kodosumi.errors import (
    ERROR_DOMAIN,
    FieldViolation,
    InvalidArgument,
    KodosumiError,
    QuotaExceeded,
)

INTERNAL_MESSAGE = "internal error; the server logged the details"
# Errors often name what the request asked for (an id, a flow name, a field path). A
# request may carry megabytes there; the answer must not echo them (trailers of that size
# are refused by clients and cost the server memory per refusal).
MAX_MESSAGE_CHARS = 1024
MAX_DETAIL_CHARS = 256
MAX_VIOLATIONS = 50


def bounded(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    return cut(text, limit)


def to_rpc_status(error: KodosumiError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(
        reason=bounded(error.reason),
        domain=error.domain,
        metadata={bounded(k, 64): bounded(v) for k, v in list(error.metadata.items())[:20]},
    )
    details = [_pack(info)]
    if isinstance(error, InvalidArgument) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=bounded(v.field), description=bounded(v.description)
                )
                for v in error.violations[:MAX_VIOLATIONS]
            ]
        )
        details.append(_pack(bad))
    if isinstance(error, QuotaExceeded):
        failure = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=bounded(error.subject),
                    description=bounded(error.description),
                    quota_id=error.quota,
                    quota_value=error.limit,
                )
            ]
        )
        details.append(_pack(failure))
    return status_pb2.Status(
        code=code_pb2.Code.Value(error.status),
        message=bounded(error.message, MAX_MESSAGE_CHARS),
        details=details,
    )


def internal_status() -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=INTERNAL_MESSAGE, details=[_pack(info)]
    )


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def _pack(
    message: error_details_pb2.ErrorInfo
    | error_details_pb2.BadRequest
    | error_details_pb2.QuotaFailure,
) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def details_of(call: grpc.aio.AioRpcError | grpc.RpcError) -> tuple[str, list[FieldViolation]]:
    """The catalog reason and field violations a failed call carries (empty when it has none)."""
    reason = ""
    violations: list[FieldViolation] = []
    trailing: Any = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return reason, violations


def quota_failures_of(call: grpc.aio.AioRpcError | grpc.RpcError) -> list[tuple[str, int]]:
    """The quotas (name, limit) a RESOURCE_EXHAUSTED call names in its `QuotaFailure`."""
    return [(quota, limit) for quota, limit, _ in quota_violations_of(call)]


def quota_violations_of(call: grpc.aio.AioRpcError | grpc.RpcError) -> list[tuple[str, int, str]]:
    """(quota, limit, subject) of each violation in the call's `QuotaFailure`."""
    found: list[tuple[str, int, str]] = []
    trailing: Any = call.trailing_metadata() if hasattr(call, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                failure = error_details_pb2.QuotaFailure()
                detail.Unpack(failure)
                found += [(v.quota_id, int(v.quota_value), v.subject) for v in failure.violations]
    return found
