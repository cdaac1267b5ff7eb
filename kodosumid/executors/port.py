"""The executor port: what the executions domain needs of a place where flows run.

The domain (`kodosumid/executions/`) sees only these types. The node runs them on Ray
(`ray_pool.RayExecutorPool`, whose handles wrap executor actors); domain tests run them in
process over `engine.host.ExecutionHost` with no Ray at all. An implementation translates
its own failures: a lost executor process is `ExecutorGone` with a one-line reason, and a
catalog error raised by the engine (`kodosumi.errors.KodosumiError`) reaches the caller
as itself, never wrapped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SHARED = "shared"
PROCESS = "process"

# What `drain` answers: serialized events per execution, and the status changes among them
# per execution as (seq, status, reason).
DrainedEvents = dict[str, list[bytes]]
DrainedStatuses = dict[str, list[tuple[int, int, str]]]


class ExecutorGone(Exception):
    """The executor's process is gone (crashed, killed, its host lost).

    `str(error)` is one line a user can act on; implementations keep raw runtime detail
    (pids, internal addresses) in their logs, not here.
    """


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an executor may run: Ray resources, node labels, or one named host.

    Empty means anywhere. Executions with different placements never share an executor.
    """

    resources: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    # A Ray node id (hex) or host address the executor must run on; empty: any.
    node: str = ""

    @property
    def anywhere(self) -> bool:
        return not (self.resources or self.labels or self.node)

    @property
    def key(self) -> tuple[Any, ...]:
        return (
            tuple(sorted(self.resources.items())),
            tuple(sorted(self.labels.items())),
            self.node,
        )


ANYWHERE = Placement()


class ExecutorHandle(Protocol):
    """One executor: hosts one execution (`process` isolation) or many (`shared`)."""

    @property
    def name(self) -> str: ...

    @property
    def isolation(self) -> str: ...

    # Executions this node placed on it and has not yet seen end.
    executions: set[str]
    # Set once the node knows the executor is gone or killed it.
    dead: bool

    async def start(self, spec: Mapping[str, Any]) -> None: ...

    async def drain(
        self, acks: Mapping[str, int], max_events: int, wait_seconds: float
    ) -> tuple[DrainedEvents, DrainedStatuses]: ...

    async def cancel(self, execution_id: str, reason: str) -> None: ...

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, provided_by: str
    ) -> None: ...

    async def hosted(self) -> dict[str, int]:
        """Executions it hosts now, with the last `seq` each has buffered."""
        ...


class ExecutorPool(Protocol):
    """Hands out executors and takes them back."""

    # The start-up task; launches wait for it before picking executors (None: ready).
    ready: asyncio.Future[None] | None

    async def acquire(self, isolation: str, placement: Placement = ANYWHERE) -> ExecutorHandle: ...

    def release(self, executor: ExecutorHandle, execution_id: str) -> None:
        """An execution ended; an isolated executor is not reused (its process may be dirty)."""
        ...

    def forget(self, executor: ExecutorHandle) -> None:
        """The executor is gone; stop handing it out."""
        ...

    def kill(self, executor: ExecutorHandle) -> None: ...

    async def survivors(self) -> list[ExecutorHandle]:
        """After a node restart: executors of this node that outlived it and still host
        executions, adopted (their `executions` filled); idle ones are stopped."""
        ...

    @property
    def executors(self) -> list[ExecutorHandle]:
        """Executors that host or may host executions (not the warm spares)."""
        ...

    def counts(self) -> tuple[int, int]:
        """(alive executors, warm spares)."""
        ...

    async def close(self) -> None: ...
