"""Quote -> launch -> receipt over the real stack (a node on Ray, gRPC + mTLS on loopback,
users with certificates of the node's CA, CrewAI with the offline LLM): a quote is signed for
its caller and checks out offline with the CA certificate alone; a launch redeems it once;
a run that would pass its ceiling ends FAILED with BUDGET_EXCEEDED; the receipt is signed,
for its owner only. And what a hostile user tries with someone else's, a reused, an expired
or a mismatched quote, or with limits that are negative or overflow."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from kodosumi.contracts import QUOTE, RECEIPT, canonical_json, verify_contract
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.pricing import price_from_mapping
from kodosumi.rpc.status import details_of
from kodosumi.tls import pki_dir
from kodosumi.v1 import event_pb2, flow_pb2, quote_pb2, quote_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.catalog import example_flows
from kodosumid.config import FlowEntry
from tests.node.conftest import TEST_FLOWS, RunningNode, node_config
from tests.node.helpers import collect, eventually, statuses
from tests.node.test_cli_e2e import koco
from tests.node.users import User

HELLO_PRICE = price_from_mapping({"currency": "EUR", "per_run": "0.05"}, "price")
FLOWS = (
    *TEST_FLOWS,
    *(
        replace(
            f,
            price=price_from_mapping(
                {"currency": "EUR", "per_run": "0.01", "tokens": {"*": {"input": 1, "output": 1}}},
                "price",
            ),
        )
        for f in example_flows()
        if f.name == "search"
    ),
    FlowEntry(
        "priced-hello",
        "tests.flowlib:hello",
        input_schema={"type": "object", "properties": {"name": {"type": "string"}}},
        version="1.2",
        price=HELLO_PRICE,
    ),
    FlowEntry(
        "priced-sleepy",
        "tests.flowlib:sleepy",
        price=price_from_mapping({"currency": "EUR", "per_second": "1"}, "price"),
    ),
    FlowEntry(
        "dear",
        "tests.flowlib:sleepy",
        price=price_from_mapping({"currency": "EUR", "per_second": "100000000000"}, "price"),
    ),
)


@pytest.fixture(scope="module")
async def node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    config = node_config(tmp_path_factory.mktemp("quotes-node"), node_id="quotes-node")
    app = NodeApp(replace(config, flows=FLOWS))
    await app.start()
    running = RunningNode(app)
    yield running
    await running.close()
    await app.stop()


@pytest.fixture(scope="module")
async def users(node: RunningNode) -> AsyncIterator[tuple[User, User]]:
    ann, bob = User(node, "ann"), User(node, "bob")
    yield ann, bob
    await ann.close()
    await bob.close()


def ca_of(node: RunningNode) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        (pki_dir(node.app.config.state_dir) / "ca.pem").read_bytes()
    )


def quotes(user: User | RunningNode) -> quote_pb2_grpc.QuoteServiceStub:
    return quote_pb2_grpc.QuoteServiceStub(user.channel)


async def request_quote(
    who: User | RunningNode,
    flow: str,
    inputs: dict[str, object],
    *,
    max_seconds: float = 0.0,
    max_tokens: int = 0,
    valid_seconds: float = 0.0,
) -> quote_pb2.Quote:
    request = quote_pb2.RequestQuoteRequest(
        flow=flow,
        inputs=dict_to_struct(inputs),
        limits=quote_pb2.QuoteLimits(max_seconds=max_seconds, max_tokens=max_tokens),
        valid_seconds=valid_seconds,
    )
    return (await quotes(who).RequestQuote(request, timeout=30)).quote


async def launch_quoted(
    who: User | RunningNode, flow: str, inputs: dict[str, object], quote_id: str
) -> str:
    request = flow_pb2.LaunchExecutionRequest(
        flow=flow, inputs=dict_to_struct(inputs), quote_id=quote_id
    )
    response = await who.flows.LaunchExecution(request, timeout=30)
    return response.execution.execution_id


async def refused(call: object) -> tuple[grpc.StatusCode, str, str]:
    """(code, reason, message) of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    reason, violations = details_of(info.value)
    fields = ",".join(v.field for v in violations)
    return info.value.code(), reason or fields, info.value.details() or ""


async def receipt_of(who: User | RunningNode, execution_id: str) -> quote_pb2.Receipt:
    found: list[quote_pb2.Receipt] = []

    async def issued() -> bool:
        try:
            got = await quotes(who).GetReceipt(
                quote_pb2.GetReceiptRequest(execution_id=execution_id), timeout=10
            )
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return False
        found.append(got.receipt)
        return True

    await eventually(issued, timeout=60)
    return found[0]


async def test_quote_launch_receipt_signed_and_for_the_caller_only(
    node: RunningNode, users: tuple[User, User]
) -> None:
    ann, bob = users
    quote = await request_quote(ann, "priced-hello", {"name": "ada"})
    verified = verify_contract(quote.token, ca_of(node), QUOTE)
    claims = verified.claims
    assert verified.signer == "spiffe://local.kodosumi/node/quotes-node"
    assert claims["sub"] == str(ann.identity) == quote.requester
    assert (claims["flow"], claims["flow_version"], claims["ceiling"]) == (
        "priced-hello",
        "1.2",
        "0.05",
    )
    assert claims["jti"] == quote.quote_id and claims["exp"] > claims["iat"]
    assert set(claims["stats"]) == {"runs", "success_rate", "p50_seconds", "p95_seconds"}
    execution_id = await launch_quoted(ann, "priced-hello", {"name": "ada"}, quote.quote_id)
    assert (
        statuses(await collect(ann.flows, execution_id))[-1] == event_pb2.EXECUTION_STATUS_SUCCEEDED
    )
    receipt = await receipt_of(ann, execution_id)
    checked = verify_contract(receipt.token, ca_of(node), RECEIPT).claims
    assert checked["execution"] == execution_id and checked["quote"] == quote.quote_id
    assert (checked["amount"], checked["currency"], checked["status"]) == (
        "0.05",
        "EUR",
        "SUCCEEDED",
    )
    assert (
        receipt.amount == "0.05" and receipt.usage.attempt == 1 and receipt.usage.wall_seconds > 0
    )
    # Bob sees no receipt of Ann's; the admin (the node's local user) does.
    code, reason, _ = await refused(
        quotes(bob).GetReceipt(quote_pb2.GetReceiptRequest(execution_id=execution_id), timeout=10)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "RECEIPT_NOT_FOUND")
    assert (await receipt_of(node, execution_id)).receipt_id == receipt.receipt_id
    # The next quote measures the run that succeeded.
    again = await request_quote(ann, "priced-hello", {"name": "ada"})
    assert again.stats.runs >= 1 and again.stats.success_rate == 1.0


async def test_someone_elses_a_reused_a_mismatched_or_an_expired_quote_is_refused(
    node: RunningNode, users: tuple[User, User]
) -> None:
    ann, bob = users
    inputs = {"name": "ada"}
    quote = await request_quote(ann, "priced-hello", inputs)
    assert await refused(launch_quoted(bob, "priced-hello", inputs, quote.quote_id)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "QUOTE_NOT_YOURS",
        f"quote {quote.quote_id} was made for {ann.identity}, not for {bob.identity}",
    )
    code, reason, message = await refused(
        launch_quoted(ann, "priced-hello", {"name": "eve"}, quote.quote_id)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_MISMATCH")
    assert "other inputs" in message
    code, reason, message = await refused(launch_quoted(ann, "hello", inputs, quote.quote_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "QUOTE_MISMATCH")
    assert "flow 'priced-hello'" in message
    # Launches racing for one quote: exactly one gets it.
    results = await asyncio.gather(
        *(launch_quoted(ann, "priced-hello", inputs, quote.quote_id) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, str) for r in results) == 1
    for error in (r for r in results if not isinstance(r, str)):
        assert isinstance(error, grpc.aio.AioRpcError)
        assert details_of(error)[0] == "QUOTE_USED"
    short = await request_quote(ann, "priced-hello", inputs, valid_seconds=0.2)
    await asyncio.sleep(0.4)  # expiry is the point of this test
    assert (await refused(launch_quoted(ann, "priced-hello", inputs, short.quote_id)))[:2] == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "QUOTE_EXPIRED",
    )
    assert (await refused(launch_quoted(ann, "priced-hello", inputs, "f" * 32)))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "QUOTE_NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("flow", "limits", "field"),
    [
        ("priced-sleepy", {"max_seconds": -1.0}, "limits.max_seconds"),
        ("priced-sleepy", {"max_seconds": math.nan}, "limits.max_seconds"),
        ("priced-sleepy", {"max_seconds": math.inf}, "limits.max_seconds"),
        ("priced-sleepy", {}, "limits.max_seconds"),  # charged per second: required
        ("search", {"max_tokens": 2**64 - 1}, "limits.max_tokens"),
        ("search", {}, "limits.max_tokens"),  # charged per token: required
        ("dear", {"max_seconds": 1e9}, "limits"),  # the ceiling overflows 10^18
        ("priced-hello", {"valid_seconds": -5.0}, "valid_seconds"),
    ],
)
async def test_bad_limits_are_invalid_argument_naming_the_field(
    node: RunningNode, users: tuple[User, User], flow: str, limits: dict[str, float], field: str
) -> None:
    ann, _ = users
    code, reason, message = await refused(request_quote(ann, flow, {"seconds": 1}, **limits))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in ("INVALID_ARGUMENT", field) and message.startswith(field), message


async def test_a_crew_passing_its_token_ceiling_ends_budget_exceeded(
    node: RunningNode, users: tuple[User, User]
) -> None:
    ann, _ = users
    inputs = {"topic": "ray"}
    quote = await request_quote(ann, "search", inputs, max_tokens=100)
    assert Decimal(quote.ceiling) == Decimal("0.11")  # 0.01 + 100 tokens at 1 per 1k
    execution_id = await launch_quoted(ann, "search", inputs, quote.quote_id)
    events = await collect(ann.flows, execution_id)
    last = events[-1].status_changed
    assert last.status == event_pb2.EXECUTION_STATUS_FAILED
    assert last.reason.startswith("BUDGET_EXCEEDED") and quote.quote_id in last.reason
    # Stored up to the LLM call that passed the ceiling, nothing of the run after it.
    calls = [e for e in events if e.HasField("llm_call") and e.llm_call.phase == 2]
    assert calls and events[-2] == calls[-1]
    receipt = await receipt_of(ann, execution_id)
    assert receipt.status == event_pb2.EXECUTION_STATUS_FAILED
    assert receipt.amount == quote.ceiling  # never more than the ceiling
    tokens = sum(m.input_tokens + m.output_tokens for m in receipt.usage.models)
    assert tokens > 100


async def test_a_run_passing_its_time_ceiling_is_stopped(
    node: RunningNode, users: tuple[User, User]
) -> None:
    ann, _ = users
    quote = await request_quote(ann, "priced-sleepy", {"seconds": 60}, max_seconds=1)
    execution_id = await launch_quoted(ann, "priced-sleepy", {"seconds": 60}, quote.quote_id)
    events = await asyncio.wait_for(collect(ann.flows, execution_id), 60)
    last = events[-1].status_changed
    assert last.status == event_pb2.EXECUTION_STATUS_FAILED
    assert last.reason.startswith("BUDGET_EXCEEDED")
    receipt = await receipt_of(ann, execution_id)
    assert Decimal(receipt.amount) <= Decimal("1") and receipt.usage.wall_seconds < 30


async def test_koco_quotes_runs_fetches_and_verifies_and_catches_tampering(
    node: RunningNode, tmp_path: Path
) -> None:
    quote_file, receipt_file = tmp_path / "quote.json", tmp_path / "receipt.json"
    quoted = await koco(node, "quote", "priced-hello", "-i", "name=cli", "-o", str(quote_file))
    assert quoted.exit_code == 0, quoted.output
    assert "ceiling   0.05 EUR" in quoted.output
    quote_id = json.loads(quote_file.read_text())["quote"]["jti"]
    ran = await koco(node, "run", "priced-hello", "-i", "name=cli", "--quote", quote_id)
    assert ran.exit_code == 0, ran.output
    execution_id = (
        (
            await node.flows.ListExecutions(
                flow_pb2.ListExecutionsRequest(flow="priced-hello", page_size=1), timeout=10
            )
        )
        .executions[0]
        .execution_id
    )
    await receipt_of(node, execution_id)
    got = await koco(node, "receipt", execution_id, "-o", str(receipt_file))
    assert got.exit_code == 0 and "amount    0.05 EUR" in got.output, got.output
    verified = await koco(node, "verify", str(quote_file), str(receipt_file))
    assert verified.exit_code == 0, verified.output
    assert "valid quote" in verified.output and "valid receipt" in verified.output
    # An edited amount, in the readable part or in the signed token, fails (exit 5).
    document = json.loads(receipt_file.read_text())
    document["receipt"]["amount"] = "0"
    receipt_file.write_text(json.dumps(document))
    edited = await koco(node, "verify", str(receipt_file))
    assert edited.exit_code == 5 and "differ from what the node signed (amount)" in edited.output
    header, _, signature = document["token"].split(".")
    forged = base64.urlsafe_b64encode(canonical_json(document["receipt"])).decode().rstrip("=")
    receipt_file.write_text(json.dumps({"token": f"{header}.{forged}.{signature}"}))
    forged_run = await koco(node, "verify", str(receipt_file))
    assert forged_run.exit_code == 5, forged_run.output
    assert "changed after the node signed it" in forged_run.output
    bad = await koco(node, "quote", "priced-sleepy", "-i", "seconds=1", "--max-seconds", "-1")
    assert bad.exit_code == 2 and "limits.max_seconds" in bad.output, bad.output
    # --max-cost quotes first and refuses a ceiling above it before anything runs.
    over = await koco(node, "run", "priced-hello", "-i", "name=x", "--max-cost", "0.01")
    assert over.exit_code == 6 and "above --max-cost 0.01" in over.output, over.output
    # Limits derived from the price: 1 EUR/s buys a run of at most 2 s for 2 EUR.
    fits = await koco(node, "run", "priced-sleepy", "-i", "seconds=0.1", "--max-cost", "2")
    assert fits.exit_code == 0, fits.output
    assert "at most 2 EUR (limits 2 s, 0 tokens)" in fits.output
