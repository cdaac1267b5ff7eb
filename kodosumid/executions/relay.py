"""Executions that run on a peer node, relayed into this node's store.

When a client launches a flow this node does not offer, the launch is forwarded to a peer
that does (`PeerExecutions.launch`), and this node keeps a local execution of the same id.
A relay plays the part an executor's drain loop plays for local executions: it watches the
peer's stream from the last `seq` stored here, hands each batch to the manager, which stores
it and only then publishes it, and after a break watches again from the new last `seq`. The
peer's `seq` numbers are kept, so watchers of this node get the same ordered, gapless,
exactly-once stream, resumable here.

A peer unreachable for longer than the grace period (dead, partitioned, its trust revoked)
ends the relay with a reason; the manager records a terminal `FAILED` with it.

No gRPC here: peers sit behind `PeerExecutions`, whose failures are catalog errors.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kodosumi.errors import KodosumiError
from kodosumi.v1 import event_pb2
from kodosumid.network.backoff import Backoff, TimeSource, is_transient

log = logging.getLogger(__name__)

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

    async def launch(self, flow: str, inputs: dict[str, Any]) -> RemoteLaunch: ...

    def watch(
        self, node_id: str, execution_id: str, after_seq: int
    ) -> AsyncIterator[list[bytes]]: ...

    async def cancel(self, node_id: str, execution_id: str, reason: str) -> None: ...

    async def provide_input(
        self, node_id: str, execution_id: str, request_id: str, value: Any
    ) -> None: ...


def status_changes(events: list[bytes]) -> list[tuple[int, int, str]]:
    """(seq, status, reason) of the status events among serialized events."""
    changes = []
    for data in events:
        event = event_pb2.Event.FromString(data)
        if event.HasField("status_changed"):
            changed = event.status_changed
            changes.append((event.seq, int(changed.status), changed.reason))
    return changes


@dataclass(frozen=True, slots=True)
class RelaySettings:
    grace_seconds: float = 30.0
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.2, maximum=5.0))


async def relay(
    peers: PeerExecutions,
    node_id: str,
    execution_id: str,
    *,
    stored_seq: Callable[[], int],
    ended: Callable[[], bool],
    store: Callable[[list[bytes]], Awaitable[None]],
    settings: RelaySettings,
    time: TimeSource | None = None,
) -> str:
    """Relay until the execution ended here; returns '' then, else why it cannot go on."""
    time = time or TimeSource()
    attempt = 0
    unreachable_since: float | None = None
    while not ended():
        try:
            async for events in peers.watch(node_id, execution_id, stored_seq()):
                if events:
                    await store(events)
                unreachable_since, attempt = None, 0
                if ended():
                    return ""
            problem = "the stream ended before the execution did"
        except KodosumiError as e:
            if not is_transient(e):
                return f"peer {node_id} cannot relay the execution: {e.message}"
            problem = e.message
        if ended():
            return ""
        now = time.clock()
        if unreachable_since is None:
            unreachable_since = now
            log.info("relay of %s from %s broke (%s); resuming", execution_id, node_id, problem)
        elif now - unreachable_since >= settings.grace_seconds:
            return (
                f"peer node {node_id} unreachable for {now - unreachable_since:.0f} s "
                f"while running the execution: {problem}"
            )
        await time.sleep(settings.backoff.delay(attempt, time.random))
        attempt += 1
    return ""
