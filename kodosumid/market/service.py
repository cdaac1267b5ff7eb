"""`Market`: the node's contracts in one object — quotes, the meter of quoted runs, receipts
— built over one contract store, and the ports others plug into (`launch_hooks`,
`receipt_sinks`). `open_market` opens it under the node's state directory and attaches it to
the executions (`ExecutionService.attach_market`) and their observers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kodosumi.clock import Clock, SystemClock
from kodosumid.auth.identity import NodeCredentials
from kodosumid.catalog import Catalog
from kodosumid.event_store import EventStore
from kodosumid.executions.lifecycle import Observers
from kodosumid.executions.service import ExecutionService
from kodosumid.market.meter import Meter
from kodosumid.market.quotes import LaunchHook, Quotes, Signer
from kodosumid.market.receipts import ReceiptIssuer, ReceiptSink
from kodosumid.market.sqlite_store import SqliteContractStore
from kodosumid.market.stats import ServiceStats
from kodosumid.market.store import ContractStore


class Market:
    def __init__(
        self,
        *,
        node_id: str,
        catalog: Catalog,
        contracts: ContractStore,
        events: EventStore,
        signer: Signer,
        clock: Clock | None = None,
    ) -> None:
        clock = clock or SystemClock()
        self.contracts = contracts
        self.quotes = Quotes(
            node_id=node_id,
            catalog=catalog,
            store=contracts,
            stats=ServiceStats(events, clock),
            signer=signer,
            clock=clock,
        )
        self.meter = Meter(contracts, events)
        self.receipts = ReceiptIssuer(
            node_id=node_id,
            catalog=catalog,
            contracts=contracts,
            events=events,
            signer=signer,
            clock=clock,
        )

    @property
    def launch_hooks(self) -> list[LaunchHook]:
        """Called for each quoted launch before it is stored; raising refuses it."""
        return self.quotes.launch_hooks

    @property
    def receipt_sinks(self) -> list[ReceiptSink]:
        """Called with each receipt once it is stored."""
        return self.receipts.sinks

    def attach(self, executions: ExecutionService, observers: Observers) -> None:
        executions.attach_market(self.quotes, self.meter)
        observers.add(self.quotes.stats)
        observers.add(self.receipts)

    def start(self) -> None:
        """Issue in the background what a stop left unissued (`ReceiptIssuer.catch_up`)."""
        self.receipts.track(asyncio.get_running_loop().create_task(self.receipts.catch_up()))

    async def close(self) -> None:
        await self.receipts.drain()
        await self.contracts.close()


async def open_market(
    state_dir: Path,
    *,
    node_id: str,
    catalog: Catalog,
    events: EventStore,
    signer: Signer,
    synchronous: str = "NORMAL",
) -> Market:
    contracts = SqliteContractStore(state_dir / "contracts.sqlite", synchronous=synchronous)
    await contracts.open()
    return Market(
        node_id=node_id, catalog=catalog, contracts=contracts, events=events, signer=signer
    )


def node_signer(credentials: NodeCredentials | None) -> Signer:
    """The node's key and certificate as files hold them now (enrolled ones are renewed)."""

    def material() -> tuple[bytes, bytes] | None:
        files = credentials.files if credentials is not None else None
        if files is None:
            return None
        return files.key.read_bytes(), files.cert.read_bytes()

    return material
