"""The per-execution reorder buffer: events delivered out of order are emitted in order."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.context import ExecutionCancelled
from engine.crew.session import CrewSession
from kodosumi.v1 import event_pb2


class FakeContext:
    """What a CrewSession uses of a FlowContext."""

    def __init__(self) -> None:
        self.execution_id = "fake"
        self.emitted: list[event_pb2.Event] = []
        self.cancelled = False
        self.gate = threading.Event()
        self.gate.set()

    def emit(self, event: event_pb2.Event) -> int:
        self.gate.wait()  # a closed gate plays a full execution buffer
        self.emitted.append(event)
        return len(self.emitted)

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise ExecutionCancelled("cancelled")


class FakeEvent:
    """Quacks like a CrewAI event the mapper turns into a FrameworkEvent."""

    def __init__(self, number: int) -> None:
        self.type = f"custom_{number}"
        self.event_id = f"id-{number}"
        self.parent_event_id = None
        self.started_event_id = None
        self.emission_sequence = number
        self.timestamp = datetime.now(UTC)

    def to_json(self) -> dict[str, Any]:
        return {"number": int(self.type.split("_")[1])}


def numbers(ctx: FakeContext) -> list[int]:
    return [int(e.framework_event.type.split("_")[1]) for e in ctx.emitted]


def make(ctx: FakeContext, **options: Any) -> CrewSession:
    session = CrewSession(ctx, **options)  # type: ignore[arg-type]
    session.start()
    return session


def test_out_of_order_deliveries_from_many_threads_come_out_in_order() -> None:
    ctx = FakeContext()
    session = make(ctx)
    ordinals = [session.stamp() for _ in range(500)]
    shuffled = ordinals[:]
    random.Random(7).shuffle(shuffled)
    chunks = [shuffled[i::8] for i in range(8)]

    def deliver_all(part: list[int]) -> None:
        for ordinal in part:
            session.deliver(ordinal, (None, FakeEvent(ordinal)))

    workers = [threading.Thread(target=deliver_all, args=(chunk,)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    session.close()
    assert numbers(ctx) == ordinals
    assert [e.extra["emission_sequence"] for e in ctx.emitted] == ordinals


def test_nothing_is_emitted_past_a_gap_until_it_is_filled() -> None:
    ctx = FakeContext()
    session = make(ctx)
    first, second, third = session.stamp(), session.stamp(), session.stamp()
    session.deliver(third, (None, FakeEvent(third)))
    session.deliver(second, (None, FakeEvent(second)))
    assert session.flush(timeout=0.05) is False
    assert ctx.emitted == []
    session.deliver(first, (None, FakeEvent(first)))
    assert session.flush(timeout=5)
    session.close()
    assert numbers(ctx) == [first, second, third]


def test_close_gives_up_on_an_ordinal_that_never_arrives() -> None:
    ctx = FakeContext()
    session = make(ctx, close_grace=0.05)
    lost, kept = session.stamp(), session.stamp()
    session.deliver(kept, (None, FakeEvent(kept)))
    started = time.monotonic()
    session.close()
    assert time.monotonic() - started < 5
    assert numbers(ctx) == [kept]
    assert session.dropped == 1 and lost == 0


def test_unordered_events_are_emitted_as_they_come() -> None:
    ctx = FakeContext()
    session = make(ctx)
    session.deliver_unordered((None, FakeEvent(41)))
    assert session.flush(timeout=5)
    session.close()
    assert numbers(ctx) == [41]


def test_throttle_waits_while_the_backlog_is_full_and_raises_when_cancelled() -> None:
    ctx = FakeContext()
    ctx.gate.clear()  # the execution buffer is full: the pump cannot emit
    session = make(ctx, max_backlog=3)
    for _ in range(3):
        ordinal = session.stamp()
        session.deliver(ordinal, (None, FakeEvent(ordinal)))
    released = threading.Event()

    def emitter() -> None:
        session.throttle()
        released.set()

    thread = threading.Thread(target=emitter)
    thread.start()
    assert not released.wait(0.3)  # held back while three events are on their way
    ctx.gate.set()
    assert released.wait(5)
    thread.join()

    ctx.cancelled = True
    with pytest.raises(ExecutionCancelled):
        session.throttle()
    session.close()
    assert numbers(ctx) == [0, 1, 2]
