"""Who may read, list, add and delete files.

A file belongs to the identity that uploaded it (an output: to its execution's owner).
Its owner, operators and admins may read it; so may the flow of an execution that uses it
(the executor dials the node as the flow's identity or as the node: `Access.speaks_for`),
and a peer the file was granted to (a launch forwarded there). Anyone else gets NOT_FOUND:
the file is not theirs to know of.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, NotFound, PermissionDenied
from kodosumi.spiffe import IdentityKind
from kodosumid.event_store import ExecutionRecord
from kodosumid.files.model import FileRecord
from kodosumid.files.store import FileStore

Records = Callable[[str], Awaitable[ExecutionRecord | None]]
SpeaksFor = Callable[[Principal, ExecutionRecord], bool]


def node_grantee(node_id: str) -> str:
    """How a grant names a peer node (its identity is `spiffe://<domain>/node/<id>`)."""
    return f"node/{node_id}"


def grantee_of(principal: Principal) -> str:
    identity = principal.identity
    if identity is None or identity.kind != IdentityKind.NODE:
        return ""
    return node_grantee(identity.name)


def not_found(file_id: str) -> NotFound:
    return NotFound(f"no file {file_id!r}", reason="FILE_NOT_FOUND")


class FileAccess:
    def __init__(self, store: FileStore, records: Records, speaks_for: SpeaksFor) -> None:
        self.store = store
        self.records = records
        self.speaks_for = speaks_for

    async def readable(self, principal: Principal, file_id: str) -> FileRecord:
        if not file_id:
            raise InvalidArgument.field("file_id", "required")
        record = await self.store.get(file_id)
        if record is None:
            raise not_found(file_id)
        if principal.may_act_on(record.owner):
            return record
        grantee = grantee_of(principal)
        if grantee and await self.store.granted(file_id, grantee):
            return record
        for link in await self.store.links_of(file_id):
            execution = await self.records(link.execution_id)
            if execution is not None and self.speaks_for(principal, execution):
                return record
        raise not_found(file_id)

    async def owned(self, principal: Principal, file_id: str) -> FileRecord:
        """A file the caller may delete: its own (operators and admins: any)."""
        if not file_id:
            raise InvalidArgument.field("file_id", "required")
        record = await self.store.get(file_id)
        if record is None or not principal.may_act_on(record.owner):
            raise not_found(file_id)
        return record

    async def execution(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        """An execution whose files the caller may list."""
        if not execution_id:
            raise InvalidArgument.field("execution_id", "required")
        record = await self.records(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}", reason="EXECUTION_NOT_FOUND")
        if not (principal.may_act_on(record.owner) or self.speaks_for(principal, record)):
            raise PermissionDenied(
                f"execution {execution_id} belongs to another user", reason="NOT_YOUR_EXECUTION"
            )
        return record

    async def output_of(self, principal: Principal, execution_id: str) -> ExecutionRecord:
        """An execution the caller may add outputs to: only its own flow (its executor)."""
        record = await self.records(execution_id)
        if record is None:
            raise NotFound(f"no execution {execution_id!r}", reason="EXECUTION_NOT_FOUND")
        # An insecure node has no identities (every caller is an admin, its executors too).
        if principal.identity is not None and not self.speaks_for(principal, record):
            raise PermissionDenied(
                f"only the flow of execution {execution_id} adds its outputs",
                reason="NOT_YOUR_EXECUTION",
            )
        return record
