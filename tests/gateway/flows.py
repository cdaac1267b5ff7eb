"""Flows of the gateway tests (run in the node's executors)."""

from __future__ import annotations

from engine import FlowContext


def report(ctx: FlowContext, name: str = "world") -> str:
    """Saves a file on the node (an output the gateway links in the result)."""
    ctx.save_file("report.txt", f"report for {name}\n")
    return f"report ready for {name}"
