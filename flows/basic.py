"""Plain Python flows: fast, no framework, for demos and smoke tests of a node.

Each shows one way a flow reports what it does: printing (captured as output lines),
`ctx.progress`, yielding progress from a generator, and asking a human with
`ctx.request_input`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from engine import FlowContext, Markdown


def hello(ctx: FlowContext, name: str = "world") -> str:
    """Greet someone: prints a line and reports progress."""
    ctx.progress(0.0, "preparing a greeting")
    print(f"Hello, {name}!")
    ctx.log(f"greeted {name}")
    ctx.progress(1.0, "done")
    return f"Hello, {name}!"


async def hello_async(ctx: FlowContext, name: str = "world", delay: float = 0.1) -> Markdown:
    """The async variant: awaits (without blocking the executor) between two steps."""
    ctx.progress(0.0, "thinking")
    await asyncio.sleep(max(0.0, min(delay, 10.0)))
    print(f"Hello, {name}, asynchronously!")
    ctx.progress(1.0, "done")
    return Markdown(f"# Hello, {name}!\n\nGreeted asynchronously after {delay:g}s.")


def countdown(
    ctx: FlowContext, steps: int = 5, pause: float = 0.05
) -> Generator[Any, None, dict[str, int]]:
    """A generator flow: every value it yields becomes a progress event."""
    total = max(1, steps)
    for done in range(total):
        ctx.sleep(max(0.0, min(pause, 5.0)))  # wakes up at once when cancelled
        yield ((done + 1) / total, f"{total - done - 1} to go")
    return {"counted": total}


def approval(
    ctx: FlowContext, item: str = "a new laptop", amount: float = 1200.0
) -> dict[str, Any]:
    """Ask a human to approve a purchase (a form, answered through the node)."""
    print(f"Requesting approval for {item} ({amount:.2f})")
    answer = ctx.request_input(
        f"Approve the purchase of {item} for {amount:.2f}?",
        kind="form",
        schema={
            "type": "object",
            "properties": {
                "approved": {"type": "boolean", "title": "Approve"},
                "comment": {"type": "string", "title": "Comment"},
            },
            "required": ["approved"],
        },
    )
    decision = "approved" if answer.get("approved") else "rejected"
    print(f"The purchase was {decision}")
    return {
        "item": item,
        "amount": amount,
        "decision": decision,
        "comment": answer.get("comment", ""),
    }
