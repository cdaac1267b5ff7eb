"""The registry's catalog errors: each maps to one gRPC status and one reason in
`kodosumi.errors.CATALOG`."""

from __future__ import annotations

from kodosumi.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)


class NodeNotFound(NotFound):
    default_reason = "NODE_NOT_FOUND"

    def __init__(self, node_id: str) -> None:
        super().__init__(f"no node {node_id!r} in the registry", metadata={"node_id": node_id})


class NodeNotRegistered(NotFound):
    """A heartbeat from a node the registry does not hold a registration for: register first."""

    default_reason = "NODE_NOT_REGISTERED"

    def __init__(self, node_id: str, why: str) -> None:
        super().__init__(
            f"node {node_id!r} {why}; call RegisterNode", metadata={"node_id": node_id}
        )


class FlowOfferNotFound(NotFound):
    default_reason = "FLOW_OFFER_NOT_FOUND"

    def __init__(self, node_id: str, flow_name: str) -> None:
        super().__init__(
            f"node {node_id!r} offers no flow {flow_name!r}",
            metadata={"node_id": node_id, "flow_name": flow_name},
        )


class NodeIdentityMismatch(PermissionDenied):
    default_reason = "NODE_IDENTITY_MISMATCH"

    def __init__(self, caller: str, node_id: str) -> None:
        super().__init__(
            f"{caller} may write only its own registry entry, not node {node_id!r}",
            metadata={"node_id": node_id},
        )


class RevisionCompacted(FailedPrecondition):
    default_reason = "REVISION_COMPACTED"

    def __init__(self, revision: int, compacted: int) -> None:
        super().__init__(
            f"changes up to revision {compacted} are no longer kept (asked for changes after "
            f"{revision}); list again and watch from the revision of the list",
            metadata={"compacted_revision": str(compacted)},
        )
        self.compacted = compacted


class RevisionInFuture(InvalidArgument):
    """A watch from a revision this registry never reached (another registry's, or a wiped
    one): the field is invalid for this registry."""

    default_reason = "REVISION_IN_FUTURE"

    def __init__(self, revision: int, current: int) -> None:
        description = (
            f"revision {revision} is ahead of the registry's revision {current} "
            "(is this another registry?); list again and watch from the revision of the list"
        )
        super().__init__(
            f"after_revision: {description}",
            violations=[FieldViolation("after_revision", description)],
            reason=self.default_reason,
        )


class RegistryClosing(Unavailable):
    default_reason = "REGISTRY_SHUTTING_DOWN"

    def __init__(self) -> None:
        super().__init__("the registry is shutting down; reconnect and resume")
