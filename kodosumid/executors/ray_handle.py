"""One executor actor behind the executor port (`port.ExecutorHandle`), with Ray's failures
translated: the domain sees `ExecutorGone` with one line a user can act on, or the catalog
error (`KodosumiError`) the engine raised, never a Ray exception.

Ray's own text (pids, worker ids, internal addresses, OOM-killer advice; often ~1,000
characters) goes to the node's log, where an operator can read it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    ActorUnschedulableError,
    LocalRayletDiedError,
    NodeDiedError,
    OutOfMemoryError,
    RayActorError,
    RayError,
    RayTaskError,
    RuntimeEnvSetupError,
    WorkerCrashedError,
)

from kodosumi.errors import KodosumiError
from kodosumid.executors.port import (
    ANYWHERE,
    DrainedEvents,
    DrainedStatuses,
    ExecutorGone,
    Placement,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def gone_reason(name: str, error: BaseException) -> str:
    """One line that says what happened to executor `name`, without Ray internals."""
    # Ray's text names the actor (whose name holds the node id): match on the rest only.
    text = str(error).replace(name, "").lower()
    if "ray.kill" in text:
        return f"executor {name} died: it was stopped"
    if isinstance(error, OutOfMemoryError) or "memory" in text:
        return f"executor {name} died: its host ran out of memory"
    if isinstance(error, NodeDiedError | LocalRayletDiedError) or any(
        words in text for words in ("node has died", "node died", "node was", "raylet died")
    ):
        return f"executor {name} died: the Ray node hosting it was lost"
    if isinstance(error, RuntimeEnvSetupError):
        return f"executor {name} could not be set up (its code or environment failed to install)"
    if isinstance(error, ActorUnschedulableError):
        return f"executor {name} cannot be placed: no Ray node matches its placement"
    if isinstance(error, ActorUnavailableError):
        return f"executor {name} is unreachable"
    if isinstance(error, ActorDiedError | RayActorError | WorkerCrashedError):
        return f"executor {name} died: its process exited unexpectedly"
    return f"executor {name} died: Ray failed ({type(error).__name__})"


def translate(name: str, error: BaseException) -> BaseException:
    """The exception the domain sees for a failed call to executor `name`."""
    if isinstance(error, RayTaskError):
        cause = error.cause
        if isinstance(cause, KodosumiError):
            return cause
        if isinstance(cause, RayError):
            return translate(name, cause)
        if isinstance(cause, Exception):
            # A bug of the engine: its own exception and message, not Ray's traceback.
            log.warning("executor %s raised: %s", name, error)
            return cause
        return RuntimeError(f"executor {name}: {type(cause).__name__}")
    if isinstance(error, RayError):
        reason = gone_reason(name, error)
        log.warning("%s; Ray says: %s", reason, error)
        return ExecutorGone(reason)
    return error


def _raise(name: str, error: BaseException) -> NoReturn:
    translated = translate(name, error)
    if translated is error:
        raise error
    raise translated from None


@dataclass(eq=False)
class RayExecutor:
    """A handle on one executor actor (`port.ExecutorHandle`)."""

    name: str
    actor: Any
    isolation: str
    placement: Placement = ANYWHERE
    executions: set[str] = field(default_factory=set)
    dead: bool = False
    # Adopted after a node restart: it finishes what it hosts, then retires.
    adopted: bool = False
    # Holds code that changed (`--reload`): it finishes what it hosts, then retires.
    retiring: bool = False
    # The flows it has run (their modules stay imported in its process).
    flows: set[str] = field(default_factory=set)
    # The Ray node it runs on (id hex, address), once it answered.
    ray_node_id: str = ""
    ray_node_address: str = ""
    # What the pool adds to each start's spec (the caller's credentials, as data).
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def winding_down(self) -> bool:
        """Takes no new executions and stops once it hosts none."""
        return self.adopted or self.retiring

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except (RayError, KodosumiError) as e:
            _raise(self.name, e)

    async def ready(self) -> int:
        """The worker pid, once the process is up."""
        pid: int = await self._call(self.actor.ready.remote())
        return pid

    async def locate(self) -> None:
        """Learn which Ray node hosts the executor."""
        where: dict[str, str] = await self._call(self.actor.where.remote())
        self.ray_node_id, self.ray_node_address = where["node_id"], where["address"]

    async def preload(self, modules: list[str]) -> None:
        await self._call(self.actor.preload.remote(modules))

    async def start(self, spec: Mapping[str, Any]) -> None:
        data = dict(spec)
        self.flows.add(str(data.get("flow", "")))
        if self.prepare is not None:
            data = self.prepare(data)
        await self._call(self.actor.start.remote(data))

    async def drain(
        self, acks: Mapping[str, int], max_events: int, wait_seconds: float
    ) -> tuple[DrainedEvents, DrainedStatuses]:
        events, statuses = await self._call(
            self.actor.drain.remote(dict(acks), max_events, wait_seconds)
        )
        return events, statuses

    async def cancel(self, execution_id: str, reason: str) -> None:
        await self._call(self.actor.cancel.remote(execution_id, reason))

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, provided_by: str
    ) -> None:
        await self._call(
            self.actor.provide_input.remote(execution_id, request_id, value, provided_by)
        )

    async def hosted(self) -> dict[str, int]:
        hosted: dict[str, int] = await self._call(self.actor.hosted.remote())
        return hosted
