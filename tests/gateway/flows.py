"""Flows of the gateway tests (run in the node's executors)."""

from __future__ import annotations

from engine import FlowContext


def report(ctx: FlowContext, name: str = "world") -> str:
    """Saves a file on the node (an output the gateway links in the result)."""
    ctx.save_file("report.txt", f"report for {name}\n")
    return f"report ready for {name}"


def summary(ctx: FlowContext, name: str = "world") -> str:
    """Emits an inline artifact (content in the events, not a file)."""
    ctx.artifact("summary.json", {"name": name, "words": 2})
    return f"summary ready for {name}"
