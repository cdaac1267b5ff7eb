"""A flow that says where it runs: the host's address on the LAN, its Ray node, and the
file its code was loaded from (the copy Ray's runtime env unpacked on that host)."""

from __future__ import annotations

import socket

import ray

from engine import FlowContext


def lan_address(toward: str) -> str:
    """This host's address on the route to `toward` (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((toward, 9))
        return str(probe.getsockname()[0])


def whereami(ctx: FlowContext, toward: str) -> dict[str, str]:
    address = lan_address(toward)
    print(f"running on {address}")
    ctx.progress(1.0, address)
    return {
        "address": address,
        "ray_node_id": ray.get_runtime_context().get_node_id(),
        "code": __file__,
    }
