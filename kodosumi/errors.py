"""The error catalog: every domain error maps to one gRPC status and one public reason.

Domain code raises these; `kodosumi.rpc.status` turns them into a `google.rpc.Status` with an
`ErrorInfo` detail (and `BadRequest` for field violations). This module knows nothing of gRPC
so that the engine and domain logic can raise catalog errors freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

ERROR_DOMAIN = "kodosumi.dev"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: `field` is a dotted path such as `inputs.query`."""

    field: str
    description: str


class KodosumiError(Exception):
    """Base of every error a client may see. `status` is the name of a gRPC status code."""

    status: ClassVar[str] = "INTERNAL"
    default_reason: ClassVar[str] = "INTERNAL"
    # The `ErrorInfo` domain of the reason: ours, or a protocol's we speak (A2A's errors carry
    # `a2a-protocol.org` and the reasons of its specification).
    domain: ClassVar[str] = ERROR_DOMAIN

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = metadata or {}

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (Ray actors); keep reason and metadata on the way.
        return (_rebuild, (type(self), self.message, self.reason, self.metadata, []))


class InvalidArgument(KodosumiError):
    status = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        violations: list[FieldViolation] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = violations or []

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, self.reason, {}, self.violations))

    @classmethod
    def field(cls, name: str, description: str) -> InvalidArgument:
        """A request with one bad field; the message names it."""
        return cls(f"{name}: {description}", violations=[FieldViolation(name, description)])


def _rebuild(
    cls: type[KodosumiError],
    message: str,
    reason: str,
    metadata: dict[str, str],
    violations: list[FieldViolation],
) -> KodosumiError:
    if issubclass(cls, InvalidArgument):
        return cls(message, violations=violations, reason=reason)
    return cls(message, reason=reason, metadata=metadata)


class NotFound(KodosumiError):
    status = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(KodosumiError):
    status = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(KodosumiError):
    status = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(KodosumiError):
    status = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(KodosumiError):
    status = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(KodosumiError):
    status = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class QuotaExceeded(ResourceExhausted):
    """A quota of the caller is used up. `quota` names it (`concurrent_executions`, …),
    `limit` is its value for the caller, `subject` the identity it is counted for; the
    reason is `QUOTA_<QUOTA>` and the status carries a `google.rpc.QuotaFailure`."""

    def __init__(self, message: str, *, quota: str, limit: int, subject: str) -> None:
        super().__init__(
            message,
            reason=f"QUOTA_{quota.upper()}",
            metadata={"quota": quota, "limit": str(limit)},
        )
        self.quota = quota
        self.limit = limit
        self.subject = subject
        # The QuotaFailure's description; by default "<quota>: limit <limit>".
        self.description = f"{quota}: limit {limit}"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_quota, (self.message, self.quota, self.limit, self.subject))


def _rebuild_quota(message: str, quota: str, limit: int, subject: str) -> QuotaExceeded:
    return QuotaExceeded(message, quota=quota, limit=limit, subject=subject)


class Unavailable(KodosumiError):
    """The service cannot take the call now (shutting down, dependency down); retry later."""

    status = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(KodosumiError):
    status = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    status: str
    description: str
    examples: list[str] = field(default_factory=list)


# The public catalog: which reasons exist, what they mean and which status carries them.
CATALOG: dict[str, CatalogEntry] = {
    "FLOW_NOT_FOUND": CatalogEntry("NOT_FOUND", "No flow of that name on this node."),
    "EXECUTION_NOT_FOUND": CatalogEntry("NOT_FOUND", "No execution with that id."),
    "INVALID_INPUTS": CatalogEntry("INVALID_ARGUMENT", "Launch inputs violate the flow's schema."),
    "INVALID_ARGUMENT": CatalogEntry(
        "INVALID_ARGUMENT", "A request field is missing or malformed."
    ),
    "MALFORMED_REQUEST": CatalogEntry("INVALID_ARGUMENT", "The request bytes do not decode."),
    "EXECUTION_FINISHED": CatalogEntry(
        "FAILED_PRECONDITION", "The execution already ended; it cannot be changed."
    ),
    "EXECUTION_RUNNING": CatalogEntry(
        "FAILED_PRECONDITION", "The execution has not ended; cancel it before deleting it."
    ),
    "NO_INPUT_AWAITED": CatalogEntry(
        "FAILED_PRECONDITION", "The execution awaits no input with that request id."
    ),
    "INVALID_INPUT_VALUE": CatalogEntry(
        "INVALID_ARGUMENT", "The provided input violates the request's schema."
    ),
    "NODE_SHUTTING_DOWN": CatalogEntry("UNAVAILABLE", "The node is stopping; try another node."),
    "PEER_UNAVAILABLE": CatalogEntry(
        "UNAVAILABLE", "The peer node that runs the flow cannot be reached now; retry."
    ),
    "PEER_REFUSED": CatalogEntry(
        "UNAVAILABLE", "The peer node refused this node's identity (trust domain, revocation)."
    ),
    "TOO_MANY_EXECUTIONS": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The node runs as many executions as it is configured for."
    ),
    "QUOTA_CONCURRENT_EXECUTIONS": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The caller runs as many executions at once as its quota allows."
    ),
    "QUOTA_LAUNCHES_PER_MINUTE": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The caller launched as often in the last minute as it may."
    ),
    "QUOTA_OPEN_STREAMS": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The caller has as many watch streams open as it may."
    ),
    "QUOTA_STORED_BYTES": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The caller's executions hold as many stored bytes as it may."
    ),
    "QUOTA_MAX_INPUT_BYTES": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The launch's inputs are larger than the flow or caller allows."
    ),
    # Files (kodosumid/files/, docs/files.md).
    "FILE_NOT_FOUND": CatalogEntry("NOT_FOUND", "No file with that id that the caller may read."),
    "FILE_TOO_LARGE": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The file is larger than the node's `[files] max_file_bytes`."
    ),
    "FILE_HASH_MISMATCH": CatalogEntry(
        "INVALID_ARGUMENT", "The uploaded content's SHA-256 is not the one the header declared."
    ),
    "FILE_SIZE_MISMATCH": CatalogEntry(
        "INVALID_ARGUMENT", "The uploaded content's size is not the one the header declared."
    ),
    "FILE_IN_USE": CatalogEntry(
        "FAILED_PRECONDITION", "The file belongs to an execution; it goes when that does."
    ),
    "FILE_LOST": CatalogEntry("FAILED_PRECONDITION", "The file's content is missing on the node."),
    "QUOTA_FILE_BYTES": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The owner's files hold as many bytes as its quota allows."
    ),
    "PERMISSION_DENIED": CatalogEntry("PERMISSION_DENIED", "The caller's roles do not allow it."),
    "NOT_YOUR_EXECUTION": CatalogEntry(
        "PERMISSION_DENIED", "Users see and act on their own executions only."
    ),
    "UNAUTHENTICATED": CatalogEntry("UNAUTHENTICATED", "No acceptable identity on the call."),
    "INTERNAL": CatalogEntry("INTERNAL", "An internal fault; details are in the server's log."),
    # Contracts: quotes and receipts (kodosumid/market/, docs/market.md).
    "QUOTE_NOT_FOUND": CatalogEntry("NOT_FOUND", "This node holds no quote with that id."),
    "QUOTE_NOT_YOURS": CatalogEntry(
        "PERMISSION_DENIED", "The quote was made for another identity; request your own."
    ),
    "QUOTE_EXPIRED": CatalogEntry("FAILED_PRECONDITION", "The quote expired; request a new one."),
    "QUOTE_USED": CatalogEntry(
        "FAILED_PRECONDITION", "The quote was used by a launch already; a quote is good once."
    ),
    "QUOTE_MISMATCH": CatalogEntry(
        "FAILED_PRECONDITION", "The quote is for another flow, flow version or inputs."
    ),
    "QUOTES_UNAVAILABLE": CatalogEntry(
        "FAILED_PRECONDITION", "The node cannot sign quotes (it has no certificate: --insecure)."
    ),
    "QUOTA_OPEN_QUOTES": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The caller holds as many unused quotes of the node as it may."
    ),
    "RECEIPT_NOT_FOUND": CatalogEntry(
        "NOT_FOUND", "No receipt of that execution for the caller (not ended, or not charged)."
    ),
    # The registry (registryd).
    "NODE_NOT_FOUND": CatalogEntry("NOT_FOUND", "The registry holds no node with that id."),
    "NODE_NOT_REGISTERED": CatalogEntry(
        "NOT_FOUND", "Heartbeat from a node that is not registered (or left): register again."
    ),
    "FLOW_OFFER_NOT_FOUND": CatalogEntry("NOT_FOUND", "That node offers no flow of that name."),
    "NODE_IDENTITY_MISMATCH": CatalogEntry(
        "PERMISSION_DENIED", "A node may write only the registry entry of its own node id."
    ),
    "REVISION_COMPACTED": CatalogEntry(
        "FAILED_PRECONDITION", "The registry no longer keeps changes that old: list again."
    ),
    "REVISION_IN_FUTURE": CatalogEntry(
        "INVALID_ARGUMENT", "The revision is ahead of the registry's log: list again."
    ),
    "REGISTRY_SHUTTING_DOWN": CatalogEntry(
        "UNAVAILABLE", "The registry is stopping; reconnect and resume the watch."
    ),
    # Identity and authorization (the guard, registryd/auth, kodosumid/auth/roles.py).
    "REVOKED": CatalogEntry("UNAUTHENTICATED", "The caller's certificate has been revoked."),
    "FOREIGN_TRUST_DOMAIN": CatalogEntry(
        "UNAUTHENTICATED", "The caller's identity belongs to another trust domain."
    ),
    "METHOD_NOT_ALLOWED": CatalogEntry(
        "PERMISSION_DENIED", "The method is not in the server's authorization table."
    ),
    "FLOW_NOT_ALLOWED": CatalogEntry(
        "PERMISSION_DENIED", "The flow's allow-list names none of the caller's groups."
    ),
    "ENROLLMENT_UNAVAILABLE": CatalogEntry(
        "FAILED_PRECONDITION", "The auth provider cannot enroll now (no enrollment port)."
    ),
    "ENROLLMENT_TOKEN_INVALID": CatalogEntry(
        "UNAUTHENTICATED", "The enrollment token is unknown, used up or expired."
    ),
    "ENROLLMENT_THROTTLED": CatalogEntry(
        "RESOURCE_EXHAUSTED", "Too many failed enrollments from this address; wait and retry."
    ),
    "HOST_NAMES_NOT_ALLOWED": CatalogEntry(
        "INVALID_ARGUMENT",
        "The CSR asks for host names or addresses its token or the CA's policy does not allow.",
    ),
    "SERVER_IDENTITY_MISMATCH": CatalogEntry(
        "UNAVAILABLE", "The server's certificate names another identity than the one dialled."
    ),
    "USER_NOT_FOUND": CatalogEntry("NOT_FOUND", "The auth provider knows no user of that name."),
    "USER_EXISTS": CatalogEntry("ALREADY_EXISTS", "A user of that name exists already."),
    "GROUP_NOT_FOUND": CatalogEntry("NOT_FOUND", "The auth provider knows no group of that name."),
    "CERTIFICATE_NOT_FOUND": CatalogEntry(
        "NOT_FOUND", "The auth provider issued no certificate with that serial."
    ),
    # Budgets and settlement (kodosumi/settlement.py, registryd/ledger, docs/market.md).
    "BUDGET_EXHAUSTED": CatalogEntry(
        "RESOURCE_EXHAUSTED", "A spending budget of the buyer (user or group) cannot cover it."
    ),
    "INSUFFICIENT_FUNDS": CatalogEntry(
        "RESOURCE_EXHAUSTED", "The buyer's available balance (less its holds) is too small."
    ),
    "HOLD_NOT_FOUND": CatalogEntry("NOT_FOUND", "The caller holds no reservation with that key."),
    "HOLD_CLOSED": CatalogEntry(
        "FAILED_PRECONDITION", "The reservation was settled or released already."
    ),
    "HOLD_EXPIRED": CatalogEntry(
        "FAILED_PRECONDITION", "The reservation lapsed at its expiry; its funds are free again."
    ),
    "HOLD_KEY_REUSED": CatalogEntry(
        "ALREADY_EXISTS", "The key names a reservation of another account, amount or currency."
    ),
    "GRANT_KEY_REUSED": CatalogEntry(
        "ALREADY_EXISTS", "The key names a grant of another account, amount or currency."
    ),
    "RECEIPT_USED": CatalogEntry(
        "ALREADY_EXISTS", "The receipt settled another reservation or another amount."
    ),
    "CURRENCY_MISMATCH": CatalogEntry(
        "INVALID_ARGUMENT", "The currency is not the one of the reservation or budget."
    ),
    "SETTLE_EXCEEDS_HOLD": CatalogEntry(
        "INVALID_ARGUMENT", "A settlement may pay at most the amount reserved."
    ),
    "BALANCE_LIMIT": CatalogEntry(
        "FAILED_PRECONDITION", "The balance would pass the ledger's limit of 10^18."
    ),
    "LEDGER_UNAVAILABLE": CatalogEntry(
        "UNAVAILABLE", "The ledger (the registry) cannot be reached; nothing was charged."
    ),
}
