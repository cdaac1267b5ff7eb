"""Generated bad input against every `LedgerService` RPC through a real registry over mTLS
(the fuzz harness of `tests/fuzz`): the seller RPCs as a node, the rest as an admin. Only
documented statuses, never UNKNOWN or INTERNAL, and the registry stays SERVING.
ALREADY_EXISTS is documented here (a key or receipt reused for other figures)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest

from kodosumi.v1 import ledger_pb2
from tests.auth.conftest import AuthRegistry
from tests.fuzz import test_generated_requests as harness

SERVICE = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"]
SELLER = {"Reserve", "Settle", "Release", "GetHold"}


def _only(names: set[str], keep: bool) -> SimpleNamespace:
    """A stand-in module whose one service has the methods the caller may call."""
    methods = [m for m in SERVICE.methods if (m.name in names) == keep]
    service = SimpleNamespace(full_name=SERVICE.full_name, methods=methods)
    return SimpleNamespace(DESCRIPTOR=SimpleNamespace(services_by_name={"s": service}))


@pytest.mark.parametrize("who", ["node", "admin"])
async def test_the_ledger_answers_generated_requests_with_documented_statuses(
    auth_registry: AuthRegistry, who: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness, "ALLOWED", harness.ALLOWED | {grpc.StatusCode.ALREADY_EXISTS})
    node = who == "node"
    tls = auth_registry.pki.node("fuzz-node") if node else auth_registry.admin()
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)
    await asyncio.to_thread(
        harness._fuzz, auth_registry.address, credentials, [_only(SELLER, keep=node)]
    )
