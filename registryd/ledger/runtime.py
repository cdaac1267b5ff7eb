"""The ledger inside a registry process: its store in the registry's database, the domain
and the `LedgerService` it serves. `RegistryDaemon` opens one beside the auth provider (the
ledger's accounts are the provider's identities, its group budgets the provider's groups)."""

from __future__ import annotations

from pathlib import Path

import grpc

from kodosumi.authz import Rule
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import ledger_pb2_grpc
from registryd.auth.provider import AuthProvider
from registryd.clock import Clock
from registryd.config import LedgerConfig
from registryd.ledger.ledger import Ledger, LedgerSettings
from registryd.ledger.policy import LEDGER_SERVICE, ledger_policy
from registryd.ledger.servicer import LedgerServicer
from registryd.ledger.sqlite_store import SqliteLedgerStore

SERVICE_NAME = LEDGER_SERVICE.full_name


class LedgerRuntime:
    def __init__(self, store: SqliteLedgerStore, ledger: Ledger) -> None:
        self.store = store
        self.ledger = ledger

    @classmethod
    async def open(
        cls, config: LedgerConfig, database: Path, provider: AuthProvider, clock: Clock
    ) -> LedgerRuntime:
        store = await SqliteLedgerStore.open(database)

        async def groups_of(account: str) -> frozenset[str]:
            name = account.partition("/")[2]
            grants = await provider.grants_of(SpiffeId.user(provider.trust_domain, name))
            return grants.groups

        settings = LedgerSettings(
            hold_ttl_seconds=config.hold_ttl_seconds,
            max_hold_ttl_seconds=config.max_hold_ttl_seconds,
        )
        return cls(store, Ledger(store, clock, groups_of, settings))

    @property
    def policy(self) -> dict[str, Rule]:
        return ledger_policy()

    def add_to(self, server: grpc.aio.Server) -> None:
        ledger_pb2_grpc.add_LedgerServiceServicer_to_server(LedgerServicer(self.ledger), server)

    async def close(self) -> None:
        await self.store.close()
