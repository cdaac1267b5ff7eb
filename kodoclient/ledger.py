"""An asyncio client of the registry's ledger (`LedgerService`) for the CLI: the same target,
credentials and error handling as the auth provider's `AuthClient`, another service."""

from __future__ import annotations

from kodoclient.auth import AuthClient, RegistryTarget
from kodosumi.v1 import ledger_pb2_grpc


class LedgerClient(AuthClient):
    """`call(method, request)` on `LedgerService`; failures are `KodoclientError`s."""

    def __init__(self, target: RegistryTarget) -> None:
        super().__init__(target)
        self._stub = ledger_pb2_grpc.LedgerServiceStub(self._channel)
