"""Fixtures for the ledger over gRPC: the auth tests' real registry (mTLS on loopback, its
auth provider and ledger), and stubs of `LedgerService` for an admin, users and nodes."""

from __future__ import annotations

from typing import Any

import pytest

from kodosumi.v1 import ledger_pb2_grpc
from tests.auth.conftest import AuthRegistry, auth_registry, pki, start_auth_registry
from tests.node.conftest import ray_cluster

__all__ = ["auth_registry", "pki", "ray_cluster", "start_auth_registry"]


class Ledgers:
    """`LedgerService` stubs by who calls: `admin`, `user("alice")`, `node("n1")`."""

    def __init__(self, registry: AuthRegistry) -> None:
        self.registry = registry

    def admin(self) -> Any:
        return ledger_pb2_grpc.LedgerServiceStub(self.registry.channel(self.registry.admin()))

    def user(self, name: str) -> Any:
        return ledger_pb2_grpc.LedgerServiceStub(
            self.registry.channel(self.registry.pki.user(name))
        )

    def node(self, node_id: str) -> Any:
        return ledger_pb2_grpc.LedgerServiceStub(
            self.registry.channel(self.registry.pki.node(node_id))
        )

    def flow(self, node_id: str, flow: str) -> Any:
        return ledger_pb2_grpc.LedgerServiceStub(
            self.registry.channel(self.registry.pki.flow(node_id, flow))
        )


@pytest.fixture
def ledgers(auth_registry: AuthRegistry) -> Ledgers:
    return Ledgers(auth_registry)
