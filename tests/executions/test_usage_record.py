"""The stored usage record on the domain alone (no Ray, no gRPC): written with the `Usage`
events as they are stored, one per attempt, by the node for attempts it ends itself; read
back by its owner only, summed and grouped."""

from __future__ import annotations

import pytest

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, PermissionDenied
from kodosumi.v1 import event_pb2
from kodosumid.event_store import SqliteEventStore
from kodosumid.executions.metering import usage_in
from tests.executions.conftest import (
    ANN,
    BOB,
    OPERATOR,
    START,
    Domain,
    eventually,
    status_is,
)

S = event_pb2


async def test_each_attempt_has_a_record_and_the_run_their_sum(domain: Domain) -> None:
    execution_id = await domain.launch("flaky", {"fail_times": 1})
    events = await domain.events(execution_id)
    sent = [e.usage for e in events if e.HasField("usage")]
    record = await domain.service.usage_of(ANN, execution_id)
    assert [a.attempt for a in record.attempts] == [1, 2] == [u.attempt for u in sent]
    assert [a.source for a in record.attempts] == ["engine", "engine"]
    assert [a.output_bytes for a in record.attempts] == [u.output_bytes for u in sent]
    assert record.attempts[0].at_ns == int(START * 1e9) and record.attempts[0].node == "n1"
    assert record.own.attempts == 2 and record.own.runs == 1
    assert record.own.wall_seconds == pytest.approx(sum(u.wall_seconds for u in sent))
    assert record.children.runs == 0 and record.total == record.own
    # Stored with the events: a store opened afresh (a restarted node) has it.
    again = SqliteEventStore(domain.store.path)
    await again.open()
    try:
        assert await again.usage_of(execution_id) == list(record.attempts)
    finally:
        await again.close()


async def test_an_attempt_whose_executor_died_gets_the_nodes_record(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy-retried", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    domain.executor_of(execution_id).crash()
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RETRYING))
    await domain.first(execution_id, lambda e: e.attempt == 2 and e.HasField("status_changed"))
    await domain.service.cancel(ANN, execution_id, "enough")
    await domain.events(execution_id)
    first, second = (await domain.service.usage_of(ANN, execution_id)).attempts
    # Counted by the node from the attempt's stored events: no CPU, and it says so.
    assert (first.source, first.cpu_seconds, first.llm_calls) == ("node", 0.0, 0)
    assert first.note.startswith("no usage from the engine (") and "died" in first.note
    assert "counted by the node from its stored events" in first.note
    assert first.input_bytes == len(b'{"seconds": 30}')  # counted as the engine counts it
    assert first.wall_seconds >= 0.0
    # The cancelled live attempt sent its own figures so far.
    assert second.source == "engine" and second.attempt == 2


async def test_a_user_sees_only_their_own_usage(domain: Domain) -> None:
    ann = await domain.launch("hello", {"name": "a"})
    bob = await domain.launch("hello", {"name": "b"}, principal=BOB)
    for eid, who in ((ann, ANN), (bob, BOB)):
        await domain.events(eid, principal=who)
    metering = domain.service.metering
    mine = await metering.summarize(ANN, group_by="user")
    assert [r.key for r in mine.rows] == [ANN.id]
    assert [r.key for r in (await metering.summarize(ANN, user="ann")).rows] == [""]
    with pytest.raises(PermissionDenied):
        await metering.summarize(ANN, user="bob")
    with pytest.raises(PermissionDenied):
        await metering.summarize(ANN, user=BOB.id)
    with pytest.raises(PermissionDenied):
        await domain.service.usage_of(ANN, bob)
    everyone = await metering.summarize(OPERATOR, group_by="user")
    assert sorted(r.key for r in everyone.rows) == sorted([ANN.id, BOB.id])
    bob_only = await metering.summarize(OPERATOR, user="bob", group_by="execution")
    assert [r.key for r in bob_only.rows] == [bob]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"group_by": "planet"}, "group_by"),
        ({"page_size": -1}, "page_size"),
        ({"since_ns": -5}, "since"),
        ({"since_ns": 10, "until_ns": 5}, "until"),
        ({"user": "no/such name"}, "user"),
        ({"flow": "f" * 5000}, "flow"),
        ({"page_token": "garbage!"}, "page_token"),
    ],
)
async def test_bad_filters_name_the_field(
    domain: Domain, arguments: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await domain.service.metering.summarize(OPERATOR, **arguments)  # type: ignore[arg-type]
    assert caught.value.violations[0].field == field


async def test_usage_is_written_once_however_often_it_is_read(domain: Domain) -> None:
    execution_id = await domain.launch("hello")
    await domain.events(execution_id)
    await eventually(
        lambda: _has_usage(domain, execution_id),
    )
    assert len((await domain.service.usage_of(ANN, execution_id)).attempts) == 1


async def _has_usage(domain: Domain, execution_id: str) -> bool:
    return bool(await domain.store.usage_of(execution_id))


async def test_the_owners_groups_at_launch_key_group_summaries(domain: Domain) -> None:
    grouped = Principal(ANN.identity, ANN.roles, frozenset({"lab", "ops"}))
    execution_id = await domain.launch("hello", principal=grouped)
    await domain.events(execution_id)
    (attempt,) = (await domain.service.usage_of(ANN, execution_id)).attempts
    assert attempt.groups == ("lab", "ops")
    page = await domain.service.metering.summarize(ANN, group_by="group", group="lab")
    assert [(r.key, r.totals.runs) for r in page.rows] == [("lab", 1)]


async def test_a_flow_cannot_forge_its_usage(domain: Domain) -> None:
    execution_id = await domain.launch("forges-usage")
    events = await domain.events(execution_id)
    assert next(e.result.text for e in events if e.HasField("result")).startswith("refused")
    assert len([e for e in events if e.HasField("usage")]) == 1  # the engine's own
    (attempt,) = (await domain.service.usage_of(ANN, execution_id)).attempts
    assert attempt.source == "engine" and attempt.output_bytes > 0


def _usage_event(attempt: int, **figures: object) -> bytes:
    event = event_pb2.Event(execution_id="e", seq=9, attempt=attempt)
    event.usage.attempt = attempt
    for name, value in figures.items():
        setattr(event.usage, name, value)
    return event.SerializeToString()


def test_what_a_hostile_peer_claims_is_held_to_what_the_store_keeps() -> None:
    bad = event_pb2.Event(execution_id="e", seq=1, attempt=1)
    bad.usage.attempt = 1
    bad.usage.wall_seconds = float("nan")
    bad.usage.cpu_seconds = -5.0
    bad.usage.output_bytes = 2**64 - 1
    for _ in range(2):  # the same model twice, and a name far too long
        bad.usage.models.add(model="m", calls=1, input_tokens=2**64 - 1)
    bad.usage.models.add(model="x" * 5000, calls=1)
    (got,) = usage_in([bad.SerializeToString()], node="peer", groups=(), at_ns=1)
    assert (got.wall_seconds, got.cpu_seconds, got.output_bytes) == (0.0, 0.0, 2**63 - 1)
    assert next((m.model, m.calls, m.input_tokens) for m in got.models) == ("m", 2, 2**63 - 1)
    assert len(got.models[1].model) == 200
    # An attempt out of range, or not the event's own, is no record at all.
    assert usage_in([_usage_event(0), _usage_event(101)], node="p", groups=(), at_ns=1) == []
    mismatched = event_pb2.Event(attempt=2)
    mismatched.usage.attempt = 3
    assert usage_in([mismatched.SerializeToString()], node="p", groups=(), at_ns=1) == []


async def test_a_hostile_peers_usage_is_stored_without_breaking_the_batch(
    domain: Domain,
) -> None:
    execution_id = await domain.launch("hello")
    await domain.events(execution_id)
    bad = event_pb2.Event(execution_id=execution_id, seq=1, attempt=2)
    bad.usage.attempt = 2
    bad.usage.wall_seconds = float("inf")
    bad.usage.models.add(model="m", calls=1, input_tokens=2**64 - 1)
    bad.usage.models.add(model="m", calls=1, input_tokens=2**64 - 1)
    usage = usage_in([bad.SerializeToString()], node="peer", groups=(), at_ns=1)
    await domain.store.append({}, {}, {execution_id: usage})
    attempts = await domain.store.usage_of(execution_id)
    assert [a.attempt for a in attempts] == [1, 2]
    assert attempts[1].models[0].calls == 2 and attempts[1].models[0].input_tokens == 2**63 - 1
    assert attempts[1].wall_seconds == 0.0


async def test_an_isolated_run_counts_the_cpu_of_the_threads_it_starts(domain: Domain) -> None:
    """Alone in its process, a run's CPU is the process's; beside other runs, its thread's."""
    cpu = {}
    for flow in ("burns", "burns-isolated"):
        execution_id = await domain.launch(flow, {"seconds": 0.3})
        await domain.events(execution_id)
        (attempt,) = (await domain.service.usage_of(ANN, execution_id)).attempts
        cpu[flow] = attempt.cpu_seconds
    assert cpu["burns"] < 0.2 and cpu["burns-isolated"] >= 0.29
