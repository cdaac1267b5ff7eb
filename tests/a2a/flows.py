"""Flows of the A2A tests (imported inside executor actors as `tests.a2a.flows`)."""

from __future__ import annotations

from typing import Any

from engine import FlowContext


def big_artifact(size: int, ctx: FlowContext) -> dict[str, int]:
    """One artifact of `size` bytes (chunked by the engine), then a JSON result."""
    ctx.artifact("blob.bin", bytes(i % 251 for i in range(size)))
    ctx.markdown("# report\nall good")
    return {"size": size}


def big_then_asks(size: int, ctx: FlowContext) -> dict[str, Any]:
    """An artifact of `size` bytes, then a question: the task stays open until answered."""
    ctx.artifact("blob.bin", bytes(i % 251 for i in range(size)))
    return {"answer": ctx.request_input("Done?", kind="text")}


def asks_kinds(ctx: FlowContext) -> dict[str, Any]:
    """A form, an approval and a text request, one after another."""
    form = ctx.request_input(
        "How many?",
        schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    )
    approved = ctx.request_input("Approve?", kind="approval")
    name = ctx.request_input("Your name?", kind="text")
    return {"form": form, "approved": approved, "name": name}


def calls_agent(address: str, tenant: str, name: str, ctx: FlowContext) -> dict[str, Any]:
    """Asks the A2A agent at `address` (a flow `tenant` of another node) to greet `name`."""
    return {"agent_said": ctx.call_agent(address, {"name": name}, tenant=tenant)}
