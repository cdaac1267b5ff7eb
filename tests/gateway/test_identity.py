"""The `gateway` identity kind: its SPIFFE id, its role, and the authorization rows that give
it what selling flows needs (launch, watch, answer, read its files) and nothing more."""

from __future__ import annotations

import pytest

from kodosumi.authz import GATEWAY, StaticRoleResolver, default_roles
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId, SpiffeId
from kodosumid.auth.policy import NODE_POLICY
from registryd.auth.policy import auth_policy
from registryd.policy import registry_policy

_FLOW = "/kodosumi.v1.FlowService/"


def test_a_gateway_id_has_one_segment_and_its_own_role() -> None:
    gw = SpiffeId.parse("spiffe://d/gateway/market-1")
    assert gw.kind is IdentityKind.GATEWAY and gw.name == "market-1"
    assert str(SpiffeId.gateway("d", "market-1")) == "spiffe://d/gateway/market-1"
    with pytest.raises(InvalidSpiffeId):
        SpiffeId.parse("spiffe://d/gateway/a/b")
    assert default_roles(gw) == {GATEWAY}


async def test_a_gateway_is_no_user_whatever_its_name() -> None:
    """A gateway named like an admin gets the gateway role only."""
    resolver = StaticRoleResolver(admins=("root",), operators=("root",))
    assert await resolver.roles_of(SpiffeId.gateway("d", "root")) == {GATEWAY}


def test_the_node_lets_a_gateway_sell_flows_and_nothing_else() -> None:
    allowed = {method for method, rule in NODE_POLICY.items() if GATEWAY in rule.roles}
    sells = {
        _FLOW + m
        for m in (
            "ListFlows",
            "GetFlow",
            "LaunchExecution",
            "GetExecution",
            "ListExecutions",
            "WatchExecution",
            "CancelExecution",
            "ProvideInput",
        )
    }
    files = {"/kodosumi.v1.FileService/DownloadFile", "/kodosumi.v1.FileService/StatFile"}
    # Quotes for the runs it sells, and the receipts of its own executions.
    quotes = {"/kodosumi.v1.QuoteService/RequestQuote", "/kodosumi.v1.QuoteService/GetReceipt"}
    standard = {m for m in allowed if m.startswith(("/grpc.health", "/grpc.reflection"))}
    assert allowed == sells | files | quotes | standard | {"/kodosumi.v1.NodeService/GetNodeInfo"}


def test_a_gateway_reads_the_registry_and_renews_its_certificate_only() -> None:
    registry = {m for m, rule in registry_policy().items() if GATEWAY in rule.roles}
    assert all("Register" not in m and "Heartbeat" not in m for m in registry)
    assert "/kodosumi.v1.RegistryService/ListFlowOffers" in registry
    auth = {m.rsplit("/", 1)[1] for m, rule in auth_policy().items() if GATEWAY in rule.roles}
    assert auth == {"RenewCertificate", "WhoAmI", "ListBadges"}
