"""Launch → events → watch → cancel → input → retry → executor death, on the domain alone."""

from __future__ import annotations

import pytest

from kodosumi.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.statuses import TERMINAL
from kodosumi.v1 import event_pb2
from tests.executions.conftest import (
    ANN,
    BOB,
    OPERATOR,
    START,
    Domain,
    eventually,
    status_is,
    statuses,
)

S = event_pb2


async def test_a_launch_runs_to_its_result_and_the_stream_is_gapless(domain: Domain) -> None:
    execution_id = await domain.launch("hello", {"name": "ann"})
    events = await domain.events(execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert statuses(events)[0] == S.EXECUTION_STATUS_PENDING
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert struct_to_dict(events[1].inputs_received.inputs) == {"name": "ann"}
    assert [e.result.text for e in events if e.HasField("result")] == ["hello ann"]
    record = await domain.service.get(ANN, execution_id)
    assert record.status == S.EXECUTION_STATUS_SUCCEEDED and record.last_seq == len(events)
    # The node's own events and the execution row take their time from the injected clock.
    assert record.create_ns == int(START * 1e9)
    assert events[0].time_unix_nano == events[1].time_unix_nano == int(START * 1e9)
    assert domain.service.counts() == {}


async def test_a_watch_resumes_after_any_seq_exactly_once(domain: Domain) -> None:
    execution_id = await domain.launch("hello")
    everything = await domain.events(execution_id)
    for after in (0, 1, 3, len(everything) - 1, len(everything), 2**64 - 1):
        tail = await domain.events(execution_id, after_seq=after)
        assert tail == everything[after:]


async def test_a_watcher_sees_live_events_it_subscribed_to_before_they_happened(
    domain: Domain,
) -> None:
    execution_id = await domain.launch("sleepy", {"seconds": 0.3})
    events = await domain.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert S.EXECUTION_STATUS_RUNNING in statuses(events)


async def test_cancel_ends_a_running_execution_with_the_reason(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    await domain.service.cancel(ANN, execution_id, "changed my mind")
    events = await domain.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert events[-1].status_changed.reason == "changed my mind"
    with pytest.raises(FailedPrecondition) as ended:
        await domain.service.cancel(ANN, execution_id, "again")
    assert ended.value.reason == "EXECUTION_FINISHED"


async def test_an_isolated_execution_gets_an_executor_of_its_own_that_goes_with_it(
    domain: Domain,
) -> None:
    execution_id = await domain.launch("sleepy-isolated", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    executor = domain.executor_of(execution_id)
    assert executor.isolation == "process"
    await domain.service.cancel(ANN, execution_id, "")
    events = await domain.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert events[-1].status_changed.reason == f"cancelled by {ANN.id}"
    await eventually(lambda: _true(executor.dead))
    assert executor not in domain.pool.executors


async def _true(value: bool) -> bool:
    return value


async def test_input_is_requested_answered_and_recorded(domain: Domain) -> None:
    execution_id = await domain.launch("asks")
    request = await domain.first(execution_id, lambda e: e.HasField("input_requested"))
    await eventually(lambda: _status_of(domain, execution_id, S.EXECUTION_STATUS_AWAITING_INPUT))
    with pytest.raises(InvalidArgument):
        await domain.service.provide_input(ANN, execution_id, "", {"n": 1})
    await domain.service.provide_input(
        ANN, execution_id, request.input_requested.request_id, {"n": 3}
    )
    events = await domain.events(execution_id)
    provided = [e.input_provided for e in events if e.HasField("input_provided")]
    assert [p.provided_by for p in provided] == [ANN.id]
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    result = [value_to_python(e.result.json) for e in events if e.HasField("result")]
    assert result == [{"answer": {"n": 3}}]
    with pytest.raises(FailedPrecondition):
        await domain.service.provide_input(ANN, execution_id, "r", 1)


async def _status_of(domain: Domain, execution_id: str, status: int) -> bool:
    return (await domain.service.get(ANN, execution_id)).status == status


async def test_a_failed_attempt_is_retried_and_the_stream_carries_both(domain: Domain) -> None:
    execution_id = await domain.launch("flaky", {"fail_times": 1})
    events = await domain.events(execution_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert S.EXECUTION_STATUS_RETRYING in statuses(events)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert {e.attempt for e in events} == {1, 2}
    assert (await domain.service.get(ANN, execution_id)).attempt == 2


async def test_the_last_failed_attempt_fails_the_execution(domain: Domain) -> None:
    execution_id = await domain.launch("flaky", {"fail_times": 5})
    events = await domain.events(execution_id)
    assert statuses(events).count(S.EXECUTION_STATUS_RETRYING) == 2
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert (await domain.service.get(ANN, execution_id)).attempt == 3


async def test_an_executor_death_fails_its_executions_with_the_reason(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    executor = domain.executor_of(execution_id)
    executor.crash()
    events = await domain.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_FAILED
    assert events[-1].status_changed.reason == (
        f"executor {executor.name} died: its process exited unexpectedly"
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert executor not in domain.pool.executors
    # The next launch gets a new executor.
    again = await domain.launch("hello")
    assert statuses(await domain.events(again))[-1] == S.EXECUTION_STATUS_SUCCEEDED


async def test_an_executor_death_is_retried_when_attempts_are_left(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy-retried", {"seconds": 0.5})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    domain.executor_of(execution_id).crash()
    events = await domain.events(execution_id)
    assert S.EXECUTION_STATUS_RETRYING in statuses(events)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_SUCCEEDED
    assert {e.attempt for e in events} == {1, 2}


async def test_cancel_between_attempts_ends_the_execution(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy-retried", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    domain.executor_of(execution_id).crash()
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RETRYING))
    await domain.service.cancel(ANN, execution_id, "stop retrying")
    events = await domain.events(execution_id)
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED
    assert events[-1].status_changed.reason == "stop retrying"


async def test_shutdown_ends_what_is_still_running_explicitly(domain: Domain) -> None:
    execution_id = await domain.launch("sleepy", {"seconds": 30})
    await domain.first(execution_id, status_is(S.EXECUTION_STATUS_RUNNING))
    await domain.service.shutdown(0.1)
    events = await domain.events(execution_id)
    assert statuses(events)[-1] in TERMINAL
    assert statuses(events)[-1] == S.EXECUTION_STATUS_CANCELLED


async def test_retention_deletes_only_what_ended_long_enough_ago(domain: Domain) -> None:
    done = await domain.launch("hello")
    await domain.events(done)
    running = await domain.launch("sleepy", {"seconds": 30})
    with pytest.raises(FailedPrecondition):
        await domain.service.delete(ANN, running)
    # The store stamps end times itself (real time); the cutoff comes from the domain's clock,
    # which stands at START (in 2027): nothing ended more than a day before it yet.
    assert await domain.service.expire(86_400 * 365 * 10) == 0
    assert await domain.service.expire(0) == 1
    with pytest.raises(NotFound):
        await domain.service.get(ANN, done)
    assert (await domain.service.get(ANN, running)).status not in TERMINAL


# -- what another user, or bad input, must not get --------------------------------------------


async def test_another_user_can_neither_see_nor_act_on_an_execution(domain: Domain) -> None:
    execution_id = await domain.launch("asks")
    request = await domain.first(execution_id, lambda e: e.HasField("input_requested"))
    for attempt in (
        domain.service.get(BOB, execution_id),
        domain.events(execution_id, principal=BOB),
        domain.service.cancel(BOB, execution_id, "mine now"),
        domain.service.provide_input(
            BOB, execution_id, request.input_requested.request_id, {"n": 666}
        ),
        domain.service.delete(BOB, execution_id),
    ):
        with pytest.raises(PermissionDenied):
            await attempt
    page = await domain.service.list_executions(
        BOB, statuses=[], flow="", page_size=0, page_token=""
    )
    assert page.executions == []
    # An operator sees and acts on everybody's.
    await domain.service.cancel(OPERATOR, execution_id, "by the operator")
    events = await domain.events(execution_id)
    assert events[-1].status_changed.reason == "by the operator"
    assert all(
        value_to_python(e.input_provided.value) != {"n": 666}
        for e in events
        if e.HasField("input_provided")
    )


async def test_bad_launches_name_the_field(domain: Domain) -> None:
    with pytest.raises(InvalidArgument) as bad:
        await domain.launch("hello", {"name": "", "extra": 1})
    assert {v.field for v in bad.value.violations} >= {"inputs.name"}
    with pytest.raises(NotFound):
        await domain.launch("no-such-flow")
    with pytest.raises(InvalidArgument):
        await domain.launch("")
    with pytest.raises(InvalidArgument):
        await domain.service.launch(ANN, "hello", {}, parent_execution_id="0" * 32)
    with pytest.raises(InvalidArgument):
        await domain.service.get(ANN, "")
    with pytest.raises(NotFound):
        await domain.service.get(ANN, "0" * 32)
