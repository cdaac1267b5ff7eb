"""The A2A binding: `[a2a]`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class A2AConfig:
    """The A2A binding (`[a2a]`, docs/a2a.md): served on the node's gRPC port, always."""

    # The HTTP listener for A2A discovery (`/.well-known/agent-card.json`); empty: none.
    http_listen: str = ""
    max_part_bytes: int = 1024 * 1024
    cancel_wait_seconds: float = 10.0
