"""The contracts' domain in process (memory stores, a throwaway PKI, a manual clock): the free
allowance counted over the owner's earlier receipts of the period, a quoted run's receipt
issued after a stop (`catch_up`), and the meter cutting a batch at the call that passes the
ceiling."""

from __future__ import annotations

import time
from decimal import Decimal

from kodosumi.authz import USER, Principal
from kodosumi.clock import ManualClock
from kodosumi.contracts import RECEIPT, verify_contract
from kodosumi.pki import CertificateAuthority, cert_pem, create_ca, key_pem
from kodosumi.pricing import price_from_mapping
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import event_pb2
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry
from kodosumid.event_store import ExecutionRecord, MemoryEventStore, StatusChange
from kodosumid.market.memory_store import MemoryContractStore
from kodosumid.market.service import Market

DOMAIN = "domain.test"
CA = CertificateAuthority(*create_ca(DOMAIN))
CERT, KEY = CA.issue(SpiffeId.node(DOMAIN, "n1"))
ANN = Principal(SpiffeId.user(DOMAIN, "ann"), frozenset({USER}))
FLOW = FlowEntry(
    "tok",
    "tests.flowlib:hello",
    price=price_from_mapping(
        {
            "currency": "EUR",
            "per_run": "1",
            "tokens": {"*": {"input": 1, "output": 1}},
            "free": {"runs": 1, "tokens": 500, "period": "day"},
        },
        "price",
    ),
)
TIMED = FlowEntry(
    "timed",
    "tests.flowlib:sleepy",
    price=price_from_mapping({"currency": "EUR", "per_second": "1"}, "price"),
)
S = event_pb2


def market(clock: ManualClock) -> tuple[Market, MemoryEventStore]:
    events = MemoryEventStore(clock=clock.now_ns)
    built = Market(
        node_id="n1",
        catalog=Catalog([FLOW, TIMED]),
        contracts=MemoryContractStore(),
        events=events,
        signer=lambda: (key_pem(KEY), cert_pem(CERT)),
        clock=clock,
    )
    return built, events


def status(eid: str, seq: int, value: int, at: int) -> bytes:
    event = event_pb2.Event(execution_id=eid, seq=seq, attempt=1, time_unix_nano=at)
    event.status_changed.status = value  # type: ignore[assignment]
    return event.SerializeToString()


def llm(eid: str, seq: int, tokens: int, at: int) -> bytes:
    event = event_pb2.Event(execution_id=eid, seq=seq, attempt=1, time_unix_nano=at)
    event.llm_call.phase = S.STEP_PHASE_COMPLETED
    event.llm_call.model = "offline/scripted"
    event.llm_call.usage.prompt_tokens = tokens
    return event.SerializeToString()


async def ended_run(events: MemoryEventStore, eid: str, tokens: int, at: int) -> None:
    record = ExecutionRecord(
        eid, FLOW.name, str(ANN.identity), S.EXECUTION_STATUS_PENDING, "", {}, at
    )
    await events.create_execution(record, [status(eid, 1, S.EXECUTION_STATUS_PENDING, at)])
    stream = [
        status(eid, 2, S.EXECUTION_STATUS_RUNNING, at),
        llm(eid, 3, tokens, at + 10**9),
        status(eid, 4, S.EXECUTION_STATUS_SUCCEEDED, at + 2 * 10**9),
    ]
    await events.append(
        {eid: (2, stream)},
        {
            eid: [
                StatusChange(2, S.EXECUTION_STATUS_RUNNING, ""),
                StatusChange(4, S.EXECUTION_STATUS_SUCCEEDED, ""),
            ]
        },
    )


async def test_the_free_allowance_is_counted_over_the_periods_receipts() -> None:
    clock = ManualClock(time.time())
    m, events = market(clock)
    amounts = []
    for i in range(3):
        await ended_run(events, f"e{i}", 400, clock.now_ns())
        receipt = await m.receipts.issue(f"e{i}")
        assert receipt is not None
        amounts.append((receipt.amount, receipt.claims["free_used"]))
    assert amounts == [
        (Decimal(0), {"runs": 1, "seconds": "0", "tokens": 0}),  # the free run
        (Decimal(1), {"runs": 0, "seconds": "0", "tokens": 400}),  # 400 of 500 free tokens
        (Decimal("1.3"), {"runs": 0, "seconds": "0", "tokens": 100}),  # the last 100 free
    ]
    clock.advance(86_400)  # the next day: a free run again
    await ended_run(events, "e3", 400, clock.now_ns())
    receipt = await m.receipts.issue("e3")
    assert receipt is not None and receipt.amount == 0
    again = await m.receipts.issue("e3")
    assert again is not None and again.stored == receipt.stored  # one receipt per execution


async def test_a_quoted_run_ended_during_a_stop_gets_its_receipt_at_start() -> None:
    clock = ManualClock(time.time())
    m, events = market(clock)
    terms, _ = await m.quotes.request(ANN, "tok", {}, max_tokens=1000)
    await ended_run(events, "e1", 400, clock.now_ns())
    assert await m.contracts.claim(terms.quote_id, "e1")
    assert await m.receipts.catch_up() == 1
    receipt = await m.receipts.issue("e1")
    assert receipt is not None and receipt.claims["quote"] == terms.quote_id
    assert verify_contract(receipt.stored.token, CA.cert, RECEIPT).claims["execution"] == "e1"
    assert await m.receipts.catch_up() == 0


async def test_the_meter_cuts_right_after_the_call_that_passes_the_ceiling() -> None:
    clock = ManualClock(time.time())
    m, events = market(clock)
    terms, _ = await m.quotes.request(ANN, "tok", {}, max_tokens=1000)
    assert terms.ceiling == Decimal(2)
    now = clock.now_ns()
    record = ExecutionRecord(
        "e1", "tok", str(ANN.identity), S.EXECUTION_STATUS_PENDING, "", {}, now
    )
    await events.create_execution(record, [status("e1", 1, S.EXECUTION_STATUS_PENDING, now)])
    await m.quotes.redeem(ANN, terms.quote_id, FLOW, {}, "e1")
    batch = [status("e1", 2, S.EXECUTION_STATUS_RUNNING, now)]
    batch += [llm("e1", 3 + i, 400, now) for i in range(4)]  # 1 + 0.4 * n passes 2 at n = 3
    kept, why = await m.meter.admit("e1", batch)
    assert kept == 4 and why.startswith("BUDGET_EXCEEDED")
    assert await m.meter.admit("other", batch) == (len(batch), "")  # no quote: not metered
    # The call that passes the ceiling may be the last of its batch: the run stops there too.
    m2, events2 = market(clock)
    terms2, _ = await m2.quotes.request(ANN, "tok", {}, max_tokens=1000)
    await events2.create_execution(record, [status("e1", 1, S.EXECUTION_STATUS_PENDING, now)])
    await m2.quotes.redeem(ANN, terms2.quote_id, FLOW, {}, "e1")
    for one in batch[:3]:
        assert await m2.meter.admit("e1", [one]) == (1, "")
    kept, why = await m2.meter.admit("e1", [batch[3]])
    assert kept == 1 and why.startswith("BUDGET_EXCEEDED")


async def test_run_time_passing_the_ceiling_is_due_even_after_a_restart() -> None:
    clock = ManualClock(time.time())
    m, events = market(clock)
    terms, _ = await m.quotes.request(ANN, "timed", {}, max_seconds=2)
    now = clock.now_ns()
    record = ExecutionRecord(
        "e1", "timed", str(ANN.identity), S.EXECUTION_STATUS_PENDING, "", {}, now
    )
    await events.create_execution(record, [status("e1", 1, S.EXECUTION_STATUS_PENDING, now)])
    await m.quotes.redeem(ANN, terms.quote_id, TIMED, {}, "e1")
    running = [status("e1", 2, S.EXECUTION_STATUS_RUNNING, now)]
    await events.append(
        {"e1": (2, running)}, {"e1": [StatusChange(2, S.EXECUTION_STATUS_RUNNING, "")]}
    )
    # A fresh meter (a restarted node) that has seen no batch of the run yet.
    restarted, _ = market(clock)
    restarted.meter.contracts = m.contracts
    restarted.meter.events = events
    assert await restarted.meter.due("e1", now + 2 * 10**9) == ""
    assert (await restarted.meter.due("e1", now + 2_100_000_000)).startswith("BUDGET_EXCEEDED")
