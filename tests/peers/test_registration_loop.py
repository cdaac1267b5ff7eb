"""The registration loop against a scripted registry, on fake time: what it sends, when it
waits, how it backs off, when it registers again — without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kodosumi.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from kodosumi.v1 import flow_pb2, node_pb2
from kodosumid.config import RegistryClientConfig
from kodosumid.network.backoff import Backoff, jittered
from kodosumid.network.registration import Registration
from tests.peers.fakes import FakeTime, Script, until

SETTINGS = RegistryClientConfig(
    heartbeat_interval=5.0, retry_initial_seconds=0.5, retry_max_seconds=4.0
)


class ScriptedRegistry:
    def __init__(self, script: Script) -> None:
        self.script = script

    async def register(self, info: node_pb2.NodeInfo, heartbeat_interval: float | None) -> float:
        result: float = await self.script.answer("register", (info, heartbeat_interval))
        return result

    async def heartbeat(self, node_id: str, load: node_pb2.NodeLoad, time_limit: float) -> float:
        result: float = await self.script.answer("heartbeat", (node_id, load))
        return result

    async def deregister(self, node_id: str, reason: str, time_limit: float) -> None:
        self.script.calls.append(("deregister", (node_id, reason)))  # never scripted


def info() -> node_pb2.NodeInfo:
    return node_pb2.NodeInfo(
        node_id="node-a",
        version="0.1.0",
        endpoints=["127.0.0.1:7470"],
        flows=[flow_pb2.Flow(name="hello", node_id="node-a")],
        capabilities=["watch-batches"],
        load=node_pb2.NodeLoad(running_executions=3),
    )


@contextlib.asynccontextmanager
async def running(
    outcomes: list[Any], time: FakeTime, settings: RegistryClientConfig = SETTINGS
) -> AsyncIterator[tuple[Registration, Script]]:
    script = Script(outcomes)
    registration = Registration(ScriptedRegistry(script), info, settings, time.source())
    registration.start()
    try:
        yield registration, script
    finally:
        await registration.stop()


def unavailable() -> Unavailable:
    return Unavailable("registry is unreachable", reason="PEER_UNAVAILABLE")


async def test_registers_the_full_state_then_heartbeats_at_the_granted_interval() -> None:
    time = FakeTime(rand=0.5)
    async with running([2.0, 2.0, 2.0], time) as (registration, script):
        await asyncio.wait_for(script.parked.wait(), 5)
        assert script.names == ["register", "heartbeat", "heartbeat", "heartbeat"]
        sent, asked = script.calls[0][1]
        assert sent == info() and asked == SETTINGS.heartbeat_interval
        assert script.calls[1][1] == ("node-a", info().load)
        # Beats follow the interval the registry granted (2 s, not the 5 s asked), jittered
        # to at most 10 % earlier.
        assert time.sleeps == [jittered(2.0, lambda: 0.5)] * 3
        assert all(1.8 <= s <= 2.0 for s in time.sleeps)
        assert registration.registered and registration.heartbeats == 2


async def test_not_found_registers_again_at_once() -> None:
    time = FakeTime()
    gone = NotFound("node unknown", reason="NODE_NOT_REGISTERED")
    async with running([2.0, gone, 2.0], time) as (registration, script):
        await asyncio.wait_for(script.parked.wait(), 5)
        assert script.names == ["register", "heartbeat", "register", "heartbeat"]
        assert len(time.sleeps) == 2  # one before each heartbeat, none before registering
        assert registration.registrations == 2


async def test_registry_down_backs_off_capped_and_jittered_then_registers_again() -> None:
    time = FakeTime(rand=1.0)  # the top of each jitter range: the ceiling itself
    down = [unavailable() for _ in range(6)]
    async with running([2.0, unavailable(), *down, 2.0], time) as (registration, script):
        await asyncio.wait_for(script.parked.wait(), 5)
        # heartbeat fails -> retry RegisterNode (it re-asserts the full state) until it answers
        assert script.names == ["register", "heartbeat", *["register"] * 7, "heartbeat"]
        beat = jittered(2.0, lambda: 1.0)
        # before the beat, after the failed beat and each failed retry, before the next beat
        assert time.sleeps == [beat, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, beat]  # capped at 4 s
        assert registration.registered and registration.last_error == ""


async def test_refresh_registers_again_without_waiting_for_the_interval() -> None:
    time = FakeTime(block=True)  # the heartbeat wait never ends by itself
    async with running([2.0, 2.0], time) as (registration, script):
        await until(lambda: script.names == ["register"] and len(time.sleeps) == 1)
        registration.refresh()
        await until(lambda: len(script.calls) == 2)
        assert script.names == ["register", "register"]  # no heartbeat in between
        assert registration.registrations == 2


async def test_an_interval_outside_the_registrys_bounds_falls_back_to_its_default() -> None:
    time = FakeTime()
    refused = InvalidArgument(
        "bad interval", violations=[FieldViolation("heartbeat_interval", "out of bounds")]
    )
    async with running([refused, 10.0], time) as (registration, script):
        await asyncio.wait_for(script.parked.wait(), 5)
        asked = [call[1][1] for call in script.calls if call[0] == "register"]
        assert asked == [5.0, None]
        assert registration.interval == 10.0


async def test_stop_deregisters_a_registered_node() -> None:
    time = FakeTime(block=True)
    script = Script([2.0])
    registration = Registration(ScriptedRegistry(script), info, SETTINGS, time.source())
    registration.start()
    await until(lambda: registration.registered)
    await registration.stop("maintenance")
    assert script.calls[-1] == ("deregister", ("node-a", "maintenance"))
    assert not registration.registered


async def test_stop_without_a_registration_calls_nothing() -> None:
    time = FakeTime()
    script = Script([unavailable()] * 3)
    registration = Registration(ScriptedRegistry(script), info, SETTINGS, time.source())
    registration.start()
    await asyncio.wait_for(script.parked.wait(), 5)
    await registration.stop()
    assert "deregister" not in script.names


@pytest.mark.parametrize("attempt", [0, 1, 3, 10, 200])
def test_backoff_stays_within_half_and_all_of_the_capped_ceiling(attempt: int) -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)
    ceiling = min(30.0, 0.5 * 2**attempt)
    low, high = backoff.delay(attempt, lambda: 0.0), backoff.delay(attempt, lambda: 0.999999)
    assert low == pytest.approx(ceiling / 2)
    assert ceiling / 2 <= high <= ceiling
