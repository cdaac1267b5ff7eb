"""The raw Ray baseline: the smallest actor there is (imported by its worker as `bench.raw_ray`).

Kept apart from the benchmark modules so a new worker imports only `ray` and `os` here, and
the baseline pays Ray's own cost and nothing of ours.
"""

from __future__ import annotations

import os
from typing import Any

import ray


class Echo:
    async def ready(self) -> int:
        return os.getpid()


# The same options the node's pool gives its executors.
RemoteEcho: Any = ray.remote(Echo).options(num_cpus=0, max_concurrency=100_000, max_restarts=0)


class Sleeper:
    """The raw baseline for many concurrent waits: one async actor, one coroutine each."""

    async def ready(self) -> int:
        return os.getpid()

    async def sleep(self, seconds: float) -> str:
        import asyncio

        await asyncio.sleep(seconds)
        return "slept"


RemoteSleeper: Any = ray.remote(Sleeper).options(
    num_cpus=0, max_concurrency=100_000, max_restarts=0
)
