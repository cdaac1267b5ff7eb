"""Flow prices: the catalog's `price` table checked key by key (a bad price stops the node's
start naming the key), published with the flow by a real node to a real registry (mTLS,
the session's Ray) and shown by `koco flows` and `koco flows --all`; a node announcing a
malformed price directly is refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import main
from kodosumi.errors import InvalidArgument
from kodosumi.pki import cert_pem, key_pem, write_private, write_public
from kodosumi.pricing import Price, TokenRate, price_from_mapping
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import registry_pb2 as rpb
from kodosumi.v1 import registry_pb2_grpc
from kodosumid.cli import main as kodosumid_main
from kodosumid.config import flows_from, load_config
from tests.node.conftest import TEST_FLOWS
from tests.node.helpers import eventually
from tests.peers.conftest import Cluster
from tests.registry.helpers import flow_pb, register_request

PRICE = {
    "currency": "EUR",
    "per_run": "0.05",
    "per_second": 0.001,
    "tokens": {"gpt-4o": {"input": 0.0025, "output": 0.01}, "*": {"input": "0.001"}},
    "free": {"runs": 10, "period": "month"},
}


def test_a_price_reads_exactly() -> None:
    price = price_from_mapping(PRICE, "flows[0].price")
    assert price.currency == "EUR"
    assert price.per_run == Decimal("0.05")
    assert price.per_second == Decimal("0.001")  # the decimal written, not the float's
    assert price.tokens[0] == TokenRate("gpt-4o", Decimal("0.0025"), Decimal("0.01"))
    assert price.tokens[1] == TokenRate("*", Decimal("0.001"), Decimal(0))
    assert price.free is not None and price.free.runs == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "eur"}, "flows[0].price.currency"),
        ({"currency": ""}, "flows[0].price.currency"),
        ({"per_run": -1}, "flows[0].price.per_run"),
        ({"per_run": "1e30"}, "flows[0].price.per_run"),
        ({"per_run": "NaN"}, "flows[0].price.per_run"),
        ({"per_run": float("inf")}, "flows[0].price.per_run"),
        ({"per_run": "0.0000000001"}, "flows[0].price.per_run"),
        ({"per_run": True}, "flows[0].price.per_run"),
        ({"per_second": "ten"}, "flows[0].price.per_second"),
        ({"per_runs": 1}, "flows[0].price.per_runs"),
        ({"tokens": {"gpt-4o": {"input": -0.1}}}, "flows[0].price.tokens.gpt-4o.input"),
        ({"tokens": {"gpt 4o": {"input": 1}}}, "flows[0].price.tokens.gpt 4o"),
        ({"tokens": {"m": {"inputs": 1}}}, "flows[0].price.tokens.m.inputs"),
        ({"free": {"runs": -1}}, "flows[0].price.free.runs"),
        ({"free": {"period": "week"}}, "flows[0].price.free.period"),
    ],
)
def test_a_bad_price_is_refused_naming_its_key(change: dict[str, object], field: str) -> None:
    raw = {"name": "priced", "entrypoint": "tests.flowlib:hello", "price": {**PRICE, **change}}
    with pytest.raises(InvalidArgument) as caught:
        flows_from([raw])
    assert [v.field for v in caught.value.violations] == [field]
    assert field in caught.value.message


def test_a_price_needs_a_part() -> None:
    with pytest.raises(InvalidArgument, match=r"flows\[0\]\.price: names per_run"):
        flows_from([{"name": "x", "entrypoint": "m:f", "price": {"currency": "EUR"}}])


def test_a_bad_price_in_the_node_config_stops_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        '[[flows]]\nname = "hello"\nentrypoint = "tests.flowlib:hello"\n'
        '[flows.price]\ncurrency = "EUR"\nper_run = -0.5\n'
    )
    with pytest.raises(InvalidArgument, match=r"flows\[0\]\.price\.per_run: an amount >= 0"):
        load_config(config, env={})
    # The daemon itself: exit status 2 before it serves, the file, line and key named.
    with pytest.raises(SystemExit) as stopped:
        kodosumid_main(["--config", str(config), "--listen", "127.0.0.1:0"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"{config}:6: flows[0].price.per_run: an amount >= 0" in err


async def koco(cluster: Cluster, node_address: str, *args: str) -> Result:
    pki = cluster.pki.pki
    cert, key = pki.ca.issue(SpiffeId.user(pki.ca.trust_domain, "alice"))
    write_public(cluster.folder / "alice.pem", cert_pem(cert))
    write_private(cluster.folder / "alice.key", key_pem(key))
    options = ["--node", node_address, "--state-dir", str(cluster.folder / "koco")]
    options += ["--ca", str(pki.ca_cert), "--cert", str(cluster.folder / "alice.pem")]
    options += ["--key", str(cluster.folder / "alice.key")]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_a_priced_flow_is_published_kept_and_shown(cluster: Cluster) -> None:
    registry = await cluster.registry()
    hello = next(f for f in TEST_FLOWS if f.name == "hello")
    price = price_from_mapping(PRICE, "price")
    app = await cluster.node("node-p", (replace(hello, price=price),), registry=registry)
    reader = cluster.client(registry.address)

    async def offered() -> list[rpb.FlowOffer]:
        return list((await reader.registry.ListFlowOffers(rpb.ListFlowOffersRequest())).offers)

    async def priced() -> bool:
        return any(o.flow.price.currency == "EUR" for o in await offered())

    await eventually(priced, timeout=15)
    (offer,) = await offered()
    assert offer.flow.price.per_run == "0.05"
    assert offer.flow.price.per_second == "0.001"
    assert [(t.model, t.per_1k_input, t.per_1k_output) for t in offer.flow.price.tokens] == [
        ("gpt-4o", "0.0025", "0.01"),
        ("*", "0.001", "0"),
    ]
    assert offer.flow.price.free.runs == 10

    network = await koco(cluster, app.address, "flows", "--all", "--registry", registry.address)
    assert network.exit_code == 0, network.output
    assert "PRICE" in network.output and "EUR 0.05/run" in network.output
    local = await koco(cluster, app.address, "flows")
    assert local.exit_code == 0, local.output
    assert "EUR 0.05/run + 0.001/s" in local.output
    as_json = await koco(cluster, app.address, "--json", "flows")
    (record,) = [json.loads(line) for line in as_json.stdout.splitlines() if line.strip()]
    assert record["price"]["currency"] == "EUR" and record["price"]["per_run"] == "0.05"
    one = await koco(cluster, app.address, "flows", "hello")
    assert "EUR 0.05/run" in one.output and "10 runs free/month" in one.output


@pytest.mark.parametrize(
    ("per_run", "currency", "field"),
    [
        ("-1", "EUR", "flows[0].price.per_run"),
        ("1e400", "EUR", "flows[0].price.per_run"),
        ("0.05", "e u r", "flows[0].price.currency"),
    ],
)
async def test_a_node_announcing_a_bad_price_is_refused(
    cluster: Cluster, per_run: str, currency: str, field: str
) -> None:
    """A hostile (or broken) node cannot show the network a negative or malformed price."""
    registry = await cluster.registry()
    flow = flow_pb("cheap")
    flow.price.currency = currency
    flow.price.per_run = per_run
    channel = open_channel(
        registry.address, cluster.pki.pki.node("node-h"), expect=ServerExpectation.registry()
    )
    try:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RegisterNode(register_request("node-h", [flow], interval=10), timeout=5)
    finally:
        await channel.close()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


def test_price_round_trips_through_its_message() -> None:
    from kodosumi.pricing import price_from_pb, price_to_pb
    from kodosumi.v1 import market_pb2

    price = price_from_mapping(PRICE, "price")
    message = market_pb2.Price()
    price_to_pb(price, message)
    assert price_from_pb(message) == price
    assert isinstance(price, Price)
