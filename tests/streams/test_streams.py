"""The server's stream primitive (kodosumi/streams): framing matches protobuf, the tail and
shared pages hand every follower the same bytes, replay-then-follow is gapless."""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given
from hypothesis import strategies as st

from kodosumi.rpc.guard import passthrough
from kodosumi.streams.follow import replay_then_follow
from kodosumi.streams.frames import chunks, skip, split
from kodosumi.streams.pages import Page, SharedPages, page_of
from kodosumi.streams.tail import Tail
from kodosumi.v1 import event_pb2, flow_pb2


def _event(seq: int, size: int = 10) -> bytes:
    event = event_pb2.Event(execution_id="e", seq=seq)
    event.progress.message = "x" * size
    return event.SerializeToString()


@given(st.lists(st.integers(0, 300), max_size=40), st.integers(50, 2000))
def test_chunks_are_responses_protobuf_reads(sizes: list[int], max_bytes: int) -> None:
    events = [_event(i + 1, n) for i, n in enumerate(sizes)]
    got = chunks(1, events, max_bytes)
    seqs: list[int] = []
    for chunk in got:
        response = flow_pb2.WatchExecutionResponse.FromString(chunk.data)
        assert [e.seq for e in response.events] == list(range(chunk.first_seq, chunk.last_seq + 1))
        assert len(chunk.data) <= max_bytes or chunk.first_seq == chunk.last_seq
        assert split(chunk.data) == events[chunk.first_seq - 1 : chunk.last_seq]
        seqs += [e.seq for e in response.events]
    assert seqs == list(range(1, len(events) + 1))
    if got:
        first = got[0]
        assert split(skip(first.data, 1)) == events[first.first_seq : first.last_seq]


def test_the_guard_passes_bytes_through() -> None:
    serialize = passthrough(flow_pb2.WatchExecutionResponse.SerializeToString)
    assert serialize is not None
    raw = chunks(1, [_event(1)])[0].data
    assert serialize(raw) is raw
    assert serialize(flow_pb2.WatchExecutionResponse()) == b""


async def test_tail_is_bounded_and_shared() -> None:
    tail = Tail(max_bytes=100)
    assert tail.after(0) == []
    waiting = [asyncio.ensure_future(tail.changed()) for _ in range(3)]
    tail.append(chunks(1, [_event(1), _event(2)], 40))
    await asyncio.gather(*waiting)  # one append wakes every follower
    for n in range(3, 10):
        tail.append(chunks(n, [_event(n)]))
    newest = tail.after(8)
    assert newest is not None and [c.last_seq for c in newest] == [9]
    assert tail.after(0) is None  # trimmed: read the store


async def test_a_follower_going_away_leaves_the_others_waiting() -> None:
    """Two watchers of one execution wait on its tail; one hangs up (its serving task is
    cancelled). The other must still be woken by the next append — not cancelled with it
    (gRPC took that cancel for its client's and the call hung, seen in CI)."""
    tail = Tail()
    leaving = asyncio.ensure_future(tail.wait_changed())
    staying = asyncio.ensure_future(tail.wait_changed())
    await asyncio.sleep(0)  # both wait now
    leaving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await leaving
    assert not staying.done()
    tail.append(chunks(1, [_event(1)]))
    await asyncio.wait_for(staying, 5)
    assert not staying.cancelled()


@given(st.lists(st.integers(1, 5), min_size=1, max_size=60), st.integers(0, 2000), st.data())
def test_tail_after_hands_out_exactly_the_newer_chunks(
    batches: list[int], max_bytes: int, data: st.DataObject
) -> None:
    tail = Tail(max_bytes=max_bytes)
    seq = 1
    for size in batches:
        tail.append(chunks(seq, [_event(seq + i) for i in range(size)], 60))
        seq += size
    held = list(tail._chunks)
    cursor = data.draw(st.integers(0, seq + 1))
    got = tail.after(cursor)
    if cursor >= seq - 1:
        assert got == []
    elif held[0].first_seq > cursor + 1:
        assert got is None  # the tail no longer reaches back: read the store
    else:
        assert got == [c for c in held if c.last_seq > cursor]


async def test_followers_at_the_same_point_share_one_read() -> None:
    stored = [(i, _event(i)) for i in range(1, 101)]
    reads: list[int] = []

    async def read(key: str, after: int) -> list[tuple[int, bytes]]:
        reads.append(after)
        await asyncio.sleep(0.01)
        return [r for r in stored if r[0] > after][:30]

    pages = SharedPages(read, 500)
    got = await asyncio.gather(*(pages.page("e", 0) for _ in range(50)))
    assert reads == [0] and all(p is got[0] for p in got)
    assert got[0].chunks[0].data is got[1].chunks[0].data


async def test_replay_then_follow_is_gapless_and_ends_at_the_end() -> None:
    stored: list[tuple[int, bytes]] = [(i, _event(i)) for i in range(1, 51)]
    tail = Tail()

    async def page_after(cursor: int) -> Page:
        return page_of([r for r in stored if r[0] > cursor][:7], 300)

    async def ended_at(cursor: int) -> bool:
        return False

    seen: list[int] = []
    replayed = asyncio.Event()

    async def follow() -> None:
        async for response in replay_then_follow(10, page_after, ended_at, tail, 300):
            seen.extend(event_pb2.Event.FromString(d).seq for d in split(response))
            if len(seen) >= 40:
                replayed.set()

    task = asyncio.ensure_future(follow())
    await asyncio.wait_for(replayed.wait(), 5)
    stored.append((51, _event(51)))
    tail.append(chunks(50, [_event(50), _event(51)]))  # overlaps what was replayed
    for seq in range(52, 61):  # live: stored first, then published
        stored.append((seq, _event(seq)))
        tail.append(chunks(seq, [_event(seq)]))
    stored.append((61, _event(61)))
    tail.append(chunks(61, [_event(61)]), end_seq=61)
    await asyncio.wait_for(task, 5)
    assert seen == list(range(11, 62))
