"""The watch resumes by itself from the last seen seq when the stream breaks.

Real gRPC over loopback against the scripted node: the stream is aborted with UNAVAILABLE,
or the server is stopped mid-stream and started again on the same port.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from kodoclient import AsyncClient, ConnectConfig, KodoclientError, ReconnectPolicy
from kodosumi.v1 import event_pb2

from .conftest import FAST_RECONNECT
from .fake_node import FakeNode, status_event


def line(text: str) -> event_pb2.Event:
    return event_pb2.Event(output_line=event_pb2.OutputLine(stream=1, text=text))


async def test_resumes_after_scripted_breaks(
    fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [line(f"l{i}") for i in range(7)])
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED)])
    fake_node.break_after, fake_node.breaks = 1, 3

    async with AsyncClient(fake_config, rng=random.Random(1)) as client:
        seqs = [e.seq async for e in client.watch(execution_id)]

    assert seqs == list(range(1, 10))
    # Each reconnect started right after the last event the client had seen.
    assert fake_node.watch_calls == [0, 2, 4, 6]


async def test_resumes_after_server_restart(
    fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [line("before")])
    seen: list[int] = []
    async with AsyncClient(fake_config) as client:
        stream = client.watch(execution_id)
        seen.append((await anext(stream)).seq)
        seen.append((await anext(stream)).seq)
        # Kill the transport under the live stream, then come back on the same port.
        await asyncio.to_thread(fake_node.stop_server, 0)
        fake_node.append(
            execution_id, [line("after"), status_event(event_pb2.EXECUTION_STATUS_FAILED)]
        )
        await asyncio.to_thread(fake_node.start, fake_node.port)
        seen += [e.seq async for e in stream]
    assert seen == [1, 2, 3, 4]
    assert fake_node.watch_calls[-1] == 2


async def test_gives_up_after_bounded_attempts(fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    fake_node.break_after, fake_node.breaks = 0, 100
    policy = ReconnectPolicy(initial_backoff=0.001, max_backoff=0.002, max_attempts=3)
    config = ConnectConfig(target=fake_node.address, tls=None, reconnect=policy)
    async with AsyncClient(config) as client:
        seqs: list[int] = []
        with pytest.raises(KodoclientError) as caught:
            async for event in client.watch(execution_id):
                seqs.append(event.seq)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert "gave up after 3 reconnect attempts" in caught.value.message
    assert seqs == []
    assert len(fake_node.watch_calls) == 4


async def test_progress_renews_the_attempt_budget(fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [line(f"l{i}") for i in range(18)])
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED)])
    # Every call delivers one batch and breaks: far more breaks than max_attempts allows
    # in a row, but each attempt brings something new.
    fake_node.break_after, fake_node.breaks = 1, 100
    policy = ReconnectPolicy(initial_backoff=0.001, max_backoff=0.002, max_attempts=2)
    config = ConnectConfig(target=fake_node.address, tls=None, reconnect=policy)
    async with AsyncClient(config) as client:
        seqs = [e.seq async for e in client.watch(execution_id)]
    assert seqs == list(range(1, 21))
    assert len(fake_node.watch_calls) == 10


async def test_not_found_is_not_retried(fake_node: FakeNode, fake_config: ConnectConfig) -> None:
    async with AsyncClient(fake_config) as client:
        with pytest.raises(KodoclientError) as caught:
            async for _ in client.watch("nope"):
                pass
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "EXECUTION_NOT_FOUND"
    assert fake_node.watch_calls == []


async def test_resuming_past_the_end_of_a_finished_execution_ends(
    fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_CANCELLED)])
    async with AsyncClient(fake_config) as client:
        # The node ends the stream at once; the client must see that as the end, not as a
        # break to resume from.
        events = [e async for e in client.watch(execution_id, after_seq=2)]
    assert events == []
    assert fake_node.watch_calls == [2]


def test_backoff_is_capped_and_jittered_downwards() -> None:
    policy = ReconnectPolicy(initial_backoff=0.5, max_backoff=4, multiplier=2, jitter=0.25)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 8)]
    bases = [0.5, 1, 2, 4, 4, 4, 4]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.75 <= delay <= base
    assert FAST_RECONNECT.max_attempts == 5


async def test_a_stream_that_ends_early_is_resumed(
    fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [line("a"), line("b"), line("c")])
    fake_node.append(execution_id, [status_event(event_pb2.EXECUTION_STATUS_SUCCEEDED)])
    fake_node.break_after, fake_node.breaks, fake_node.break_mode = 1, 1, "end"
    calls: list[tuple[int, str]] = []
    async with AsyncClient(fake_config) as client:
        stream = client.watch(execution_id, on_reconnect=lambda n, d, why: calls.append((n, why)))
        seqs = [e.seq async for e in stream]
    assert seqs == [1, 2, 3, 4, 5]
    assert calls == [(1, "the stream ended before the terminal event")]
    assert fake_node.watch_calls == [0, 2]
