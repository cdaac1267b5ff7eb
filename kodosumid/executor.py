"""The executor actor: a Ray actor process that hosts executions through `engine.ExecutionHost`.

This shell is all the node knows of the engine: it is imported in the driver only as a Ray
actor class; `engine` is imported inside the actor process, never in the node. Results
crossing back are builtins (dicts, lists, bytes) so the driver never unpickles engine types.
"""

from __future__ import annotations

import os
from typing import Any

import ray


class ExecutorActor:
    def __init__(self, buffer_capacity: int, env: dict[str, str]) -> None:
        os.environ.update(env)
        from engine.host import ExecutionHost

        self.host = ExecutionHost(buffer_capacity=buffer_capacity)

    async def ready(self) -> int:
        """Answered once the process is up and the engine imported; returns the worker pid."""
        return os.getpid()

    async def preload(self, modules: list[str]) -> None:
        """Import modules ahead of time (a warm executor pays no imports at launch)."""
        import importlib

        for name in modules:
            importlib.import_module(name)

    async def start(self, spec: dict[str, Any]) -> None:
        await self.host.start(spec)

    async def drain(
        self, acks: dict[str, int], max_events: int, wait_seconds: float
    ) -> tuple[dict[str, list[bytes]], dict[str, list[tuple[int, int, str]]]]:
        return await self.host.drain(acks, max_events, wait_seconds)

    async def cancel(self, execution_id: str, reason: str) -> None:
        await self.host.cancel(execution_id, reason)

    async def provide_input(
        self, execution_id: str, request_id: str, value: Any, provided_by: str
    ) -> None:
        await self.host.provide_input(execution_id, request_id, value, provided_by)

    async def hosted(self) -> dict[str, int]:
        return self.host.hosted()


RemoteExecutor = ray.remote(ExecutorActor)
