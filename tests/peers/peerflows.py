"""Flows for the peer tests (imported inside executor actors as `tests.peers.peerflows`)."""

from __future__ import annotations

from engine import FlowContext


def ticker(count: int, interval: float, ctx: FlowContext) -> dict[str, int]:
    """Emits `count` progress events, `interval` seconds apart: a stream that lasts a while."""
    for i in range(count):
        ctx.progress(message=str(i))
        ctx.sleep(interval)
    return {"ticks": count}


def calls_flaky(ctx: FlowContext) -> object:
    """Calls `flaky` (a flow only its peer offers, so the child is relayed from there)."""
    return ctx.call_flow("flaky", {"fail_times": 1})
