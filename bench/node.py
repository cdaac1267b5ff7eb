"""An in-process node for the benchmarks: embedded Ray, mTLS on 127.0.0.1:0, the bench flows.

Started the way the node tests start theirs (`tests/node/conftest.py`): `NodeApp` in this
process, its dev CA in a private state dir, the client speaking real gRPC over loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import hermetic
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.config import DiscoveryConfig, FlowEntry, NodeConfig, PoolConfig, RayConfig
from kodosumid.executors.ray_runtime import start_ray, stop_ray

REPO = Path(__file__).resolve().parents[1]

FLOWS = (
    FlowEntry("emit-many", "bench.flows:emit_many"),
    FlowEntry("noop", "bench.flows:noop"),
    FlowEntry("noop-isolated", "bench.flows:noop", isolation="process"),
    FlowEntry("sleepy", "bench.flows:sleepy"),
)


def terminal_status(response: flow_pb2.WatchExecutionResponse) -> int:
    """The terminal status a watch response ends with, else 0 (it is always the last event)."""
    if not response.events:
        return 0
    last = response.events[-1]
    if last.HasField("status_changed") and last.status_changed.status in TERMINAL:
        return int(last.status_changed.status)
    return 0


def ensure_ray() -> None:
    """The embedded Ray the node would start, started once for every in-process benchmark."""
    hermetic.enter()
    start_ray(RayConfig())


def shutdown_ray() -> None:
    stop_ray()


@dataclass
class BenchNode:
    app: NodeApp
    channel: grpc.aio.Channel
    flows: flow_pb2_grpc.FlowServiceAsyncStub
    node: node_pb2_grpc.NodeServiceAsyncStub

    async def launch(self, flow: str, inputs: dict[str, Any] | None = None) -> str:
        response = await self.flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow=flow, inputs=dict_to_struct(inputs or {})),
            timeout=60,
        )
        return str(response.execution.execution_id)

    def watch(
        self, execution_id: str, after_seq: int = 0, timeout: float = 600
    ) -> grpc.aio.UnaryStreamCall[flow_pb2.WatchExecutionRequest, flow_pb2.WatchExecutionResponse]:
        return self.flows.WatchExecution(  # type: ignore[return-value]
            flow_pb2.WatchExecutionRequest(execution_id=execution_id, after_seq=after_seq),
            timeout=timeout,
        )

    async def wait_terminal(self, execution_id: str, after_seq: int = 0) -> int:
        """Follow the watch stream up to the terminal status event; returns that status."""
        call = self.watch(execution_id, after_seq)
        async for response in call:
            status = terminal_status(response)
            if status:
                # Stop at the terminal event rather than wait for the server to end the
                # stream: see "stuck watcher" in docs/performance.md.
                call.cancel()
                return status
        raise RuntimeError(f"watch of {execution_id} ended without a terminal status")

    async def load(self) -> node_pb2.NodeLoad:
        response = await self.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
        load: node_pb2.NodeLoad = response.node.load
        return load

    async def executor_pids(self) -> list[int]:
        """Worker pids of every executor actor (shared, isolated and warm spares)."""
        pool = self.app.pool
        assert pool is not None
        executors = [*pool.executors, *pool.spares]
        return list(await asyncio.gather(*(e.actor.ready.remote() for e in executors)))

    async def spares_ready(self, count: int, timeout: float = 60) -> None:
        """Wait until the pool holds `count` warm spares again (refilled after a launch)."""
        pool = self.app.pool
        assert pool is not None
        deadline = time.monotonic() + timeout
        while len(pool.spares) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pool did not refill {count} spares in {timeout}s")
            await asyncio.sleep(0.005)
        await self.settle()

    async def settle(self) -> None:
        """Wait until every executor has imported the pool's `preload_modules`.

        The pool fires the preload after `ready()` without waiting; it runs on the actor's
        event loop, so calls to that executor queue behind it. Asking for the same modules
        again returns once the first import is done (imports are cached).
        """
        pool = self.app.pool
        assert pool is not None
        modules = list(pool.config.preload_modules)
        if modules:
            executors = [*pool.executors, *pool.spares]
            await asyncio.gather(*(e.actor.preload.remote(modules) for e in executors))


@asynccontextmanager
async def running_node(name: str, pool: PoolConfig) -> AsyncIterator[BenchNode]:
    """A node with the bench flows; yields once its executors (and spares) are settled."""
    ensure_ray()  # blocking on purpose: nothing else runs yet, and Ray wants the main thread
    config = NodeConfig(
        node_id=f"bench-{name}",
        listen="127.0.0.1:0",
        state_dir=hermetic.scratch(f"node-{name}-"),
        flows=FLOWS,
        python_path=(str(REPO),),
        pool=pool,
        shutdown_grace_seconds=2.0,
        cancel_grace_seconds=1.0,
        # Hermetic: no zeroconf on the machine's LAN (it would find other nodes, and they us).
        discovery=DiscoveryConfig(enabled=False),
    )
    app = NodeApp(config)
    await app.start()
    try:
        assert app.pool is not None and app.pool.ready is not None
        await app.pool.ready
        assert app.client_files is not None
        channel = open_channel(
            app.address, app.client_files.read(), expect=ServerExpectation.node()
        )
        try:
            node = BenchNode(
                app,
                channel,
                flow_pb2_grpc.FlowServiceStub(channel),
                node_pb2_grpc.NodeServiceStub(channel),
            )
            await node.settle()
            yield node
        finally:
            await channel.close()
    finally:
        await app.stop()
