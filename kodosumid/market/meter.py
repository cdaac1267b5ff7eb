"""The cost of a quoted run while it goes, against the ceiling of its quote (`BudgetPort`).

The drainer hands every drained batch of a local run to `admit` before storing it. A run
with a quote is folded event by event (`fold.RunFold`); at each finished LLM call the cost
so far (per run + run time so far + tokens as the LLM reported them) is held to the
ceiling, and the batch is cut right after the call that passes it. The run-time part grows
without events: `due` checks it after each drain call. The price is the quote's (before any
free allowance, which only the receipt applies): a run never costs more than its ceiling.

A run's state is loaded on its first batch from the store (its quote, and the events stored
so far), so a node restarted mid-run meters what ran before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kodosumi.charges import variable_cost
from kodosumi.contracts import read_contract
from kodosumi.v1 import event_pb2
from kodosumid.event_store import EventStore
from kodosumid.market.claims import QuoteTerms
from kodosumid.market.fold import RunFold
from kodosumid.market.store import ContractStore

READ_BATCH = 500


@dataclass
class _Run:
    terms: QuoteTerms
    fold: RunFold = field(default_factory=RunFold)
    reason: str = ""


class Meter:
    def __init__(self, contracts: ContractStore, events: EventStore) -> None:
        self.contracts = contracts
        self.events = events
        # execution id -> its quoted run, or None for a run without a (priced) quote.
        self._runs: dict[str, _Run | None] = {}

    async def _load(self, execution_id: str) -> _Run | None:
        if execution_id in self._runs:
            return self._runs[execution_id]
        stored = await self.contracts.quote_of(execution_id)
        run = None
        if stored is not None:
            terms = QuoteTerms.from_claims(read_contract(stored.token)[1])
            if terms.price is not None:
                run = _Run(terms)
                after = 0
                while rows := await self.events.read_events(execution_id, after, READ_BATCH):
                    for _, data in rows:
                        run.fold.feed(event_pb2.Event.FromString(data))
                    after = rows[-1][0]
        self._runs[execution_id] = run
        return run

    def _over(self, run: _Run, now_ns: int) -> bool:
        price = run.terms.price
        assert price is not None
        cost = price.per_run + variable_cost(price, run.fold.metered(now_ns))
        if cost <= run.terms.ceiling:
            return False
        run.reason = (
            f"BUDGET_EXCEEDED: the run would cost more than the ceiling of its quote "
            f"{run.terms.quote_id} ({run.terms.ceiling} {price.currency}); run stopped"
        )
        return True

    async def admit(self, execution_id: str, events: list[bytes]) -> tuple[int, str]:
        run = await self._load(execution_id)
        if run is None:
            return len(events), ""
        for i, data in enumerate(events):
            event = event_pb2.Event.FromString(data)
            if run.fold.feed(event) and self._over(run, event.time_unix_nano):
                return i + 1, run.reason
        return len(events), ""

    async def due(self, execution_id: str, now_ns: int) -> str:
        # Loaded here too: a node restarted mid-run holds a silent run to its ceiling.
        run = await self._load(execution_id)
        if run is None or not run.fold.start_ns or run.fold.end_ns:
            return ""
        assert run.terms.price is not None
        if not run.terms.price.per_second:
            return ""
        return run.reason if self._over(run, now_ns) else ""

    def forget(self, execution_id: str) -> None:
        self._runs.pop(execution_id, None)
