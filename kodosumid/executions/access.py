"""Who may act on an execution: its owner, operators and admins, and the flow that launched it.

A user sees, cancels and answers only their own executions. A flow calling a flow
(`ctx.call_flow`) dials its node as itself (`flow/<node>/<flow>`) or as the node; it then
acts for its parent's owner, on the children it launched, and those children are charged to
that owner's quotas (`charged_to`): fanning out through a flow gives a user nothing more.
"""

from __future__ import annotations

from kodosumi.authz import FLOW, Principal
from kodosumi.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId, SpiffeId
from kodosumid.event_store import EventStore, ExecutionRecord


class Access:
    def __init__(self, store: EventStore, node_id: str, identity: str = "") -> None:
        self.store = store
        self.node_id = node_id
        # This node's own SPIFFE id ("" when insecure): its executors may dial it with it.
        self.identity = identity

    async def visible(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        """The execution, if the caller may see and act on it."""
        if not execution_id:
            raise InvalidArgument.field("execution_id", "required")
        record = await self.store.get_execution(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}", reason="EXECUTION_NOT_FOUND")
        if not principal.may_act_on(record.owner) and not await self._launched_by(
            principal, record
        ):
            # Execution ids are random 128-bit values, so saying that one exists leaks
            # nothing guessable; the caller learns why instead of a misleading NOT_FOUND.
            raise PermissionDenied(
                f"execution {execution_id} belongs to another user",
                reason="NOT_YOUR_EXECUTION",
            )
        return record

    def speaks_for(self, principal: Principal, parent: ExecutionRecord) -> bool:
        """Whether the caller is the parent's own flow on this node: this node itself (its
        executors dial with the node's certificate when the flow has no identity of its
        own) or the identity `flow/<this node>/<parent's flow>`. Such a caller acts for the
        parent's owner; its children belong to that owner."""
        if principal.identity is None or parent.node_id != self.node_id:
            return False
        if self.identity and principal.id == self.identity:
            return True
        try:
            flow_id = SpiffeId.flow(principal.identity.trust_domain, self.node_id, parent.flow)
        except InvalidSpiffeId:
            return False
        return principal.id == str(flow_id)

    def hosted_here(self, principal: Principal) -> bool:
        """Whether the caller is code this node runs: the node itself (its executors dial
        with its certificate when a flow has no identity) or one of its flows."""
        if principal.identity is None:
            return False
        if self.identity and principal.id == self.identity:
            return True
        identity = principal.identity
        return identity.kind is IdentityKind.FLOW and identity.names[0] == self.node_id

    async def _launched_by(self, principal: Principal, record: ExecutionRecord) -> bool:
        """A child is visible to the flow that launched it (which acts for the child's owner)."""
        if not record.parent_execution_id:
            return False
        parent = await self.store.get_execution(record.parent_execution_id)
        return parent is not None and self.speaks_for(principal, parent)

    async def parent(self, principal: Principal, parent_execution_id: str) -> ExecutionRecord:
        """The parent of a child launch: on this node, and the caller may act for it."""
        parent = await self.store.get_execution(parent_execution_id)
        if parent is None:
            raise InvalidArgument.field(
                "parent_execution_id", f"no execution {parent_execution_id!r} on this node"
            )
        if not (principal.may_act_on(parent.owner) or self.speaks_for(principal, parent)):
            raise PermissionDenied(
                f"execution {parent_execution_id} belongs to another user",
                reason="NOT_YOUR_EXECUTION",
            )
        return parent

    async def charged_to(self, principal: Principal, parent_execution_id: str) -> str:
        """Whose quotas a launch counts against: the parent's owner when the caller is the
        parent's own flow (or this node for it), else the caller.

        A flow acts only for a running execution of its own: a flow identity launching
        without a parent (an execution that would belong to no person), for a parent that
        has ended, or for a parent owned by nobody is refused."""
        if not parent_execution_id:
            if FLOW in principal.roles:
                raise PermissionDenied(
                    f"{principal.id} launches only children of its running executions "
                    "(parent_execution_id)",
                    reason="PARENT_REQUIRED",
                )
            return principal.id
        parent = await self.parent(principal, parent_execution_id)
        if not self.speaks_for(principal, parent):
            return principal.id
        if parent.terminal:
            raise FailedPrecondition(
                f"parent execution {parent.execution_id} has ended; its flow launches no "
                "more children",
                reason="PARENT_FINISHED",
            )
        if not parent.owner:
            raise PermissionDenied(
                f"parent execution {parent.execution_id} belongs to nobody",
                reason="PARENT_WITHOUT_OWNER",
            )
        return parent.owner
