"""The one resumable-stream loop (`kodoclient.resume`): forever by default, a user-set
deadline, capped jittered backoff restarted by progress, and the reconnecting/resumed hooks.
Time is injected: no test sleeps."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator

import grpc
import pytest

from kodoclient import AsyncClient, ConnectConfig, KodoclientError, ReconnectPolicy
from kodoclient.resume import Resumer, StreamBroken
from kodosumi.v1 import event_pb2

from .fake_node import FakeNode, status_event


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def resumer(policy: ReconnectPolicy, time: FakeTime, **hooks: object) -> Resumer:
    return Resumer(
        "Watch",
        policy,
        random.Random(3),
        where=lambda: "seq 0",
        clock=time.clock,
        sleep=time.sleep,
        **hooks,  # type: ignore[arg-type]
    )


async def test_by_default_it_never_gives_up() -> None:
    time = FakeTime()
    calls = 0

    async def attempt() -> AsyncGenerator[int, None]:
        nonlocal calls
        calls += 1
        if calls <= 200:  # far past any fixed attempt budget, and hours of outage
            raise StreamBroken("down")
        yield 42

    items = [i async for i in resumer(ReconnectPolicy(), time).run(attempt)]
    assert items == [42]
    assert calls == 201
    assert time.now > 600
    # Capped: no wait exceeds max_backoff, and the jitter only shortens.
    assert max(time.slept) <= ReconnectPolicy().max_backoff
    assert min(time.slept[10:]) >= ReconnectPolicy().max_backoff * 0.8


async def test_gives_up_at_the_user_set_deadline_of_outage() -> None:
    time = FakeTime()

    async def attempt() -> AsyncGenerator[int, None]:
        raise StreamBroken("connection refused")
        yield 0  # pragma: no cover

    loop = resumer(ReconnectPolicy(give_up_after=7.0), time)
    with pytest.raises(KodoclientError) as caught:
        [i async for i in loop.run(attempt)]
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert "gave up after 7.0 s of reconnecting (limit 7 s)" in caught.value.message
    assert "connection refused" in caught.value.message
    # The last attempt came at the deadline, not one backoff step past it.
    assert time.now == pytest.approx(7.0)


async def test_progress_restarts_the_backoff_and_the_deadline_and_says_resumed() -> None:
    time = FakeTime()
    script = iter(["break", "break", "break", "item", "break", "item", "end"])
    reconnects: list[int] = []
    resumed: list[int] = []

    async def attempt() -> AsyncGenerator[str, None]:
        for step in script:
            if step == "break":
                raise StreamBroken("reset")
            if step == "end":
                return
            yield step
            raise StreamBroken("reset after an item")

    # 1+2+4 s of outage before the first item, 1+2 s before the second: the outage clock
    # restarts with progress, so a 7.5 s limit is never reached.
    policy = ReconnectPolicy(initial_backoff=1, max_backoff=8, jitter=0, give_up_after=7.5)
    loop = resumer(
        policy,
        time,
        on_reconnect=lambda n, d, why: reconnects.append(n),
        on_resumed=resumed.append,
    )
    assert [i async for i in loop.run(attempt)] == ["item", "item"]
    assert time.slept == [1, 2, 4, 1, 2, 1]  # the backoff restarts at 1 after each item
    assert reconnects == [1, 2, 3, 1, 2, 1]
    assert resumed == [3, 2]


async def test_an_answer_of_the_server_is_not_retried() -> None:
    time = FakeTime()

    async def attempt() -> AsyncGenerator[int, None]:
        raise KodoclientError(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        yield 0  # pragma: no cover

    with pytest.raises(KodoclientError) as caught:
        [i async for i in resumer(ReconnectPolicy(), time).run(attempt)]
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert time.slept == []


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(give_up_after=0)
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)
    assert ReconnectPolicy().max_attempts is None
    assert ReconnectPolicy().give_up_after is None


async def test_a_watch_outlasts_many_more_breaks_than_the_old_budget(fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED)])
    fake_node.break_after, fake_node.breaks = 0, 25  # 25 empty attempts in a row
    policy = ReconnectPolicy(initial_backoff=0.001, max_backoff=0.002)
    config = ConnectConfig(target=fake_node.address, tls=None, reconnect=policy)
    resumed: list[int] = []
    async with AsyncClient(config) as client:
        events = [e async for e in client.watch(execution_id, on_resumed=resumed.append)]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].status_changed.status == event_pb2.EXECUTION_STATUS_SUCCEEDED
    assert resumed == [25]


async def test_a_replaying_hostile_node_cannot_make_the_watch_repeat_events(
    fake_node: FakeNode,
) -> None:
    """A node that ignores `after_seq` and sends everything again after each break: the
    caller still sees every event once."""
    execution_id = fake_node.create("hello")
    fake_node.append(
        execution_id,
        [
            event_pb2.Event(output_line=event_pb2.OutputLine(stream=1, text=f"l{i}"))
            for i in range(5)
        ],
    )
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED)])
    fake_node.break_after, fake_node.breaks = 1, 4
    fake_node.ignore_after_seq = True
    policy = ReconnectPolicy(initial_backoff=0.001, max_backoff=0.002)
    config = ConnectConfig(target=fake_node.address, tls=None, reconnect=policy)
    async with AsyncClient(config) as client:
        seqs = [e.seq async for e in client.watch(execution_id)]
    assert seqs == list(range(1, 8))  # the PENDING event, five lines, the end
