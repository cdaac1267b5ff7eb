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
    async def admit(self, execution_id: str, events: list[bytes]) -> int:
        """How many of these drained events (in order) fit under the run's ceiling: all of
        them (`len(events)`), or up to and including the one that passed it."""
        ...

    async def due(self, execution_id: str, now_ns: int) -> str:
        """Why the run must stop now (its run time passed the ceiling), or ""."""
        ...

    def exceeded(self, execution_id: str) -> str:
        """The reason to end it with, after `admit` kept fewer than all events."""
        ...

    def forget(self, execution_id: str) -> None:
        """The run ended: drop what is kept of it."""
        ...
