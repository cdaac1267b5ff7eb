"""The ports through which contracts reach executions (implemented by `kodosumid/market/`):
a launch that names a quote redeems it, and a quoted run's events are metered against its
cost ceiling as they are drained. The executions domain knows only these Protocols.
"""

from __future__ import annotations

from typing import Any, Protocol

from kodosumi.authz import Principal
from kodosumid.config import FlowEntry


class QuotePort(Protocol):
    async def redeem(
        self,
        principal: Principal,
        quote_id: str,
        flow: FlowEntry,
        inputs: dict[str, Any],
        execution_id: str,
    ) -> object:
        """Use the quote for this launch, or raise the catalog error that refuses it."""
        ...


class BudgetPort(Protocol):
    async def admit(self, execution_id: str, events: list[bytes]) -> tuple[int, str]:
        """How many of these drained events (in order) to store, and why the run must stop
        ("" while it fits its ceiling): all of them and "", or those up to and including the
        one that passed the ceiling — possibly the last — and the reason."""
        ...

    async def due(self, execution_id: str, now_ns: int) -> str:
        """Why the run must stop now (its run time passed the ceiling), or ""."""
        ...

    def forget(self, execution_id: str) -> None:
        """The run ended: drop what is kept of it."""
        ...
