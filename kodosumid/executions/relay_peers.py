"""Peers as the relay sees them: the `PeerExecutions` port (executions on peers, called as
this node; the network implements it in `kodosumid/network/peer_client.py`), where a
forwarded launch landed (`RemoteLaunch`), and the `peer:<node id>` executor names that mark
a relayed execution in the store (re-attached after a restart). No gRPC here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

# The `executor` column of a relayed execution: `peer:<node id>` (re-attached after a restart).
PEER_EXECUTOR_PREFIX = "peer:"


def peer_executor(node_id: str) -> str:
    return PEER_EXECUTOR_PREFIX + node_id


def peer_of(executor: str) -> str:
    """The peer a stored executor name points at, or '' for a local executor."""
    prefix = PEER_EXECUTOR_PREFIX
    return executor.removeprefix(prefix) if executor.startswith(prefix) else ""


@dataclass(frozen=True, slots=True)
class RemoteLaunch:
    node_id: str
    execution_id: str


class PeerExecutions(Protocol):
    """Executions on peers, called as this node."""

    async def launch(
        self,
        flow: str,
        inputs: dict[str, Any],
        files: dict[str, str] | None = None,
        before: Callable[[str], Awaitable[None]] | None = None,
        on_behalf_of: str = "",
    ) -> RemoteLaunch:
        """`files` (name -> file id here) are pulled by the peer `before(its node id)` let,
        and charged there to `on_behalf_of` (the execution's owner here)."""
        ...

    def watch(
        self, node_id: str, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]: ...

    async def cancel(self, node_id: str, execution_id: str, reason: str) -> None: ...

    async def provide_input(
        self, node_id: str, execution_id: str, request_id: str, value: Any
    ) -> None: ...

    async def reachable(self, node_id: str) -> bool:
        """Whether the peer answers a health check now (within the check's deadline)."""
        ...
