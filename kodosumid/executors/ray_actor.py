"""The executor actor: a Ray actor process that hosts executions through `engine.ExecutionHost`.

This shell is all the node knows of the engine: it is imported in the driver only as a Ray
actor class; `engine` is imported inside the actor process, never in the node. Results
crossing back are builtins (dicts, lists, bytes) so the driver never unpickles engine types.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
from typing import Any

import ray

from kodosumid.executors.caller_settings import CallerSettings

log = logging.getLogger(__name__)

# Names the node an executor works for in its telemetry (set by the node's pool).
NODE_ENV = "KODOSUMI_EXECUTOR_NODE"


# How long a start waits for the preload (a preload that hangs must not block runs forever).
PRELOAD_WAIT_SECONDS = 120.0


# The key of a start's spec that carries the flow's credentials as (ca, cert, key) bytes
# (None: an insecure node); kodosumid/executors/credentials.py.
CREDENTIALS_KEY = "caller_credentials"


class ExecutorActor:
    def __init__(
        self,
        buffer_capacity: int,
        env: dict[str, str],
        preload: list[str] | None = None,
        caller: dict[str, str] | None = None,
    ) -> None:
        """`caller`: where the node is and what to dial it with
        (`CallerSettings.to_dict()`); None: hosted flows cannot call flows."""
        os.environ.update(env)
        from engine import process_log, tracing
        from engine.host import ExecutionHost
        from kodosumid.executors.file_bridge import GrpcFileBridge
        from kodosumid.executors.flow_caller import GrpcFlowCaller

        # This process's own log lines reach the node's log (kodosumid/executors/ray_output.py).
        process_log.install()
        # Spans and metrics of this process go where the node's go (engine/tracing.py).
        tracing.install(node_id=env.get(NODE_ENV, ""))

        self.flow_caller = flow_caller = (
            GrpcFlowCaller(CallerSettings(**caller)) if caller else None
        )
        # `ctx.files` and `ctx.save_file` through the node, with the same credentials.
        files = GrpcFileBridge(flow_caller.channel) if flow_caller is not None else None
        self.host = ExecutionHost(
            buffer_capacity=buffer_capacity, flow_caller=flow_caller, files=files
        )
        # Preloading runs beside the actor's loop (it answers `ready` at once). A start waits
        # for it: a flow importing the same modules in another thread at the same time can
        # deadlock on CrewAI's circular imports (`_DeadlockError`), and Ray does not keep the
        # order of calls to an async actor, so the node cannot simply call preload first.
        self._imports = threading.Lock()
        self._preloaded = threading.Event()
        if preload:
            threading.Thread(
                target=self._import, args=(list(preload),), name="kodosumi-preload", daemon=True
            ).start()
        else:
            self._preloaded.set()

    def _import(self, modules: list[str]) -> None:
        try:
            with self._imports:
                for name in modules:
                    try:
                        importlib.import_module(name)
                    except Exception:
                        log.exception("executor could not preload %s", name)
        finally:
            self._preloaded.set()

    async def ready(self) -> int:
        """Answered once the process is up and the engine imported; returns the worker pid."""
        return os.getpid()

    async def where(self) -> dict[str, str]:
        """The Ray node this executor runs on: its id (hex) and address."""
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "address": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
        }

    async def preload(self, modules: list[str]) -> None:
        """Import modules ahead of time (a warm executor pays no imports at launch); returns
        once they and the constructor's preload are imported."""
        await asyncio.to_thread(self._preloaded.wait, PRELOAD_WAIT_SECONDS)
        await asyncio.to_thread(self._import, modules)

    async def start(self, spec: dict[str, Any]) -> None:
        credentials = spec.pop(CREDENTIALS_KEY, None)
        if self.flow_caller is not None:
            self.flow_caller.use(spec.get("flow", ""), _triple(credentials))
        if not self._preloaded.is_set():
            await asyncio.to_thread(self._preloaded.wait, PRELOAD_WAIT_SECONDS)
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


def _triple(value: Any) -> tuple[bytes, bytes, bytes] | None:
    if not value:
        return None
    ca, cert, key = value
    return bytes(ca), bytes(cert), bytes(key)


RemoteExecutor = ray.remote(ExecutorActor)
