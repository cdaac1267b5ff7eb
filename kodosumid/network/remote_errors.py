"""Failed calls to the registry or to peers, as catalog errors.

The node's network loops decide by catalog class and reason (register again on
`NODE_NOT_REGISTERED`, list again on `REVISION_COMPACTED`, retry on `Unavailable`), so
they never look at gRPC status codes themselves. Refusals by a peer (it does not trust
this node) are not the client's fault: they become `Unavailable` with `PEER_REFUSED`,
never a `PERMISSION_DENIED` the client would read as its own.
"""

from __future__ import annotations

import grpc

from kodosumi.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    KodosumiError,
    NotFound,
    QuotaExceeded,
    ResourceExhausted,
    Unavailable,
)
from kodosumi.rpc.status import details_of, quota_violations_of

_BY_CODE: dict[grpc.StatusCode, type[KodosumiError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}
_REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def catalog_error(error: grpc.aio.AioRpcError, *, peer: str) -> KodosumiError:
    """The catalog error a failed call to `peer` (a node id or `registry`) stands for."""
    code = error.code()
    details = error.details() or ""
    reason, violations = details_of(error)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(details, violations=violations, reason=reason or None)
    if code in _REFUSED:
        return Unavailable(f"{peer} refused the call: {details}", reason="PEER_REFUSED")
    quotas = quota_violations_of(error) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else []
    if quotas:  # a quota of the user the call was for: the client's answer, with its QuotaFailure
        quota, limit, subject = quotas[0]
        return QuotaExceeded(details, quota=quota, limit=limit, subject=subject)
    if code in _BY_CODE:
        cls = _BY_CODE[code]
        if cls is Unavailable and not reason:
            return Unavailable(f"{peer} is unreachable: {details}", reason="PEER_UNAVAILABLE")
        return cls(details or f"{peer}: {code.name}", reason=reason or None)
    return KodosumiError(f"{peer} failed: {code.name} {details}".strip(), reason=reason or None)
