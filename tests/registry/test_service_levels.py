"""Badges from measured service over a real registry (mTLS, SQLite, a ManualClock): a node's
heartbeat statistics earn a configured level, a renewal keeps it, a degraded node is
downgraded and a silent one loses it (revocations visible to whoever asks the registry); the
market filters of ListFlowOffers; a hostile node's forged statistics are refused naming the
field."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from kodosumi.badges import SERVICE_LEVEL, verify_badge
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, auth_pb2_grpc
from kodosumi.v1 import registry_pb2 as rpb
from registryd.clock import ManualClock
from registryd.config import BadgeLevel, BadgesConfig
from registryd.daemon import RegistryDaemon
from tests.registry.conftest import Pki, RegistryFactory, StubFactory
from tests.registry.helpers import flow_pb, register_request, seconds

LEVELS = {
    "gold": BadgeLevel(success_rate=0.99, p95_seconds=30, availability=0.99, min_runs=20),
    "silver": BadgeLevel(success_rate=0.9, min_runs=5),
}
BADGES = BadgesConfig(window=3600, lifetime=600, levels=LEVELS)


def stats(*flows: rpb.FlowServiceStats, window: float = 3600) -> rpb.ServiceStats:
    return rpb.ServiceStats(window=seconds(window), flows=list(flows))


def figures(flow: str = "search", **changes: float) -> rpb.FlowServiceStats:
    values: dict[str, float] = {
        "runs": 40,
        "successes": 40,
        "failures": 0,
        "p50_seconds": 1.5,
        "p95_seconds": 12.0,
    }
    values.update(changes)
    return rpb.FlowServiceStats(flow=flow, **values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    """The registry's clock from now on: badges are listed on the wall clock."""
    return ManualClock(time.time())


@pytest.fixture
async def auth_stub(pki: Pki) -> AsyncIterator[object]:
    channels: list[grpc.aio.Channel] = []

    def stub(daemon: RegistryDaemon, tls: TlsMaterial) -> auth_pb2_grpc.AuthServiceStub:
        channel = open_channel(daemon.address, tls, expect=ServerExpectation.registry())
        channels.append(channel)
        return auth_pb2_grpc.AuthServiceStub(channel)

    yield stub
    for channel in channels:
        await channel.close()


async def test_measured_service_earns_renews_downgrades_and_loses_a_level(
    start_registry: RegistryFactory,
    connect: StubFactory,
    auth_stub: object,
    pki: Pki,
    clock: ManualClock,
) -> None:
    daemon = await start_registry(badges=BADGES)
    node = connect(daemon, pki.node("node-a"))
    flows = [flow_pb("search", "demo"), flow_pb("other")]
    await node.RegisterNode(register_request("node-a", flows), timeout=5)
    clock.advance(3600)  # online the whole window
    beat = rpb.HeartbeatRequest(node_id="node-a", service_stats=stats(figures()))
    response = await node.Heartbeat(beat, timeout=5)
    assert response.stats_window.ToSeconds() == 3600  # what the node measures over

    changes = await daemon.evaluate_service()
    assert [(c.action, c.flow, c.level) for c in changes] == [("issued", "search", "gold")]
    reader = auth_stub(daemon, pki.user())  # type: ignore[operator]
    listed = await reader.ListBadges(auth_pb2.ListBadgesRequest(node_id="node-a"), timeout=5)
    (gold,) = listed.badges
    assert (gold.level, gold.kind) == ("gold", auth_pb2.BADGE_KIND_SERVICE_LEVEL)
    badge = verify_badge(gold.token, pki.ca.cert, now=clock.now())
    assert badge.kind == SERVICE_LEVEL and badge.subject.endswith("/flow/node-a/search")
    facts = badge.facts
    assert (facts["level"], facts["runs"], facts["success_rate"]) == ("gold", 40, 1.0)
    assert (facts["p95_seconds"], facts["availability"], facts["window_seconds"]) == (
        12.0,
        1.0,
        3600,
    )
    assert facts["criteria"]["p95_seconds"] == 30
    assert badge.expires_at - badge.issued_at == 600  # short: it bounds offline trust

    # The market view shows the measures and the level; the filters apply in the registry.
    async def offers(**filters: object) -> list[str]:
        request = rpb.ListFlowOffersRequest(**filters)  # type: ignore[arg-type]
        return [o.flow.name for o in (await node.ListFlowOffers(request, timeout=5)).offers]

    (offer,) = (
        await node.ListFlowOffers(rpb.ListFlowOffersRequest(flow_name="search"), timeout=5)
    ).offers
    assert (offer.service.badge_level, offer.service.p95_seconds) == ("gold", 12.0)
    assert await offers(min_badge_level="silver") == ["search"]
    assert await offers(max_p95=seconds(10)) == []
    assert await offers(max_p95=seconds(12)) == ["search"]
    assert await offers(text="OTHER") == ["other"]
    for bad, field in (
        ({"min_badge_level": "platinum"}, "min_badge_level"),
        ({"max_price": "-1", "currency": "EUR"}, "max_price"),
        ({"max_price": "1"}, "currency"),
        ({"max_price": "1", "currency": "eur"}, "currency"),
        ({"max_p95": seconds(-1)}, "max_p95"),
        ({"text": "x" * 300}, "text"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await offers(**bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (caught.value.details() or "").startswith(field), caught.value.details()

    # Past half its lifetime a level still held is renewed; the old badge is not revoked.
    clock.advance(301)
    await node.Heartbeat(beat, timeout=5)
    changes = await daemon.evaluate_service()
    assert [(c.action, c.level) for c in changes] == [("issued", "gold")]

    # Slower: below gold, still silver.
    slow = rpb.HeartbeatRequest(
        node_id="node-a", service_stats=stats(figures(p50_seconds=20, p95_seconds=45))
    )
    await node.Heartbeat(slow, timeout=5)
    changes = await daemon.evaluate_service()
    assert [(c.action, c.level) for c in changes] == [("revoked", "gold"), ("issued", "silver")]
    assert changes[0].reason == "downgraded to silver: p95 45 s > 30 s"
    everything = await reader.ListBadges(
        auth_pb2.ListBadgesRequest(node_id="node-a", include_revoked=True), timeout=5
    )
    revoked = [b for b in everything.badges if b.revoke_reason]
    assert [b.badge_id for b in revoked] == [changes[0].badge_id]
    assert revoked[0].revoke_time.ToSeconds() == int(clock.now())
    held = await reader.ListBadges(auth_pb2.ListBadgesRequest(node_id="node-a"), timeout=5)
    assert changes[0].badge_id not in {b.badge_id for b in held.badges}
    one = await reader.ListBadges(
        auth_pb2.ListBadgesRequest(badge_id=changes[0].badge_id, include_revoked=True),
        timeout=5,
    )
    assert [b.revoke_reason for b in one.badges] == [changes[0].reason]
    assert await offers(min_badge_level="gold") == []

    # Too few runs say nothing: the level is gone.
    few = rpb.HeartbeatRequest(node_id="node-a", service_stats=stats(figures(runs=3, successes=3)))
    await node.Heartbeat(few, timeout=5)
    changes = await daemon.evaluate_service()
    assert [(c.action, c.level, c.reason) for c in changes] == [
        ("revoked", "silver", "below silver: runs 3 < 5")
    ]
    assert await offers(min_badge_level="silver") == []


async def test_a_hostile_nodes_forged_statistics_are_refused_naming_the_field(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    daemon = await start_registry(badges=BADGES)
    node = connect(daemon, pki.node("node-h"))
    await node.RegisterNode(register_request("node-h", [flow_pb("search")]), timeout=5)
    cases: list[tuple[rpb.ServiceStats, str]] = [
        (stats(figures(p50_seconds=-1)), "service_stats.flows[0].p50_seconds"),
        (stats(figures(p95_seconds=math.nan)), "service_stats.flows[0].p95_seconds"),
        (stats(figures(p95_seconds=math.inf)), "service_stats.flows[0].p95_seconds"),
        (stats(figures(p50_seconds=9, p95_seconds=3)), "service_stats.flows[0].p50_seconds"),
        (stats(figures(successes=41)), "service_stats.flows[0].successes"),
        (stats(figures(runs=4_000_000_000), window=60), "service_stats.flows[0].runs"),
        (stats(figures(flow="not-mine")), "service_stats.flows[0].flow"),
        (stats(figures(), figures()), "service_stats.flows"),
        (stats(figures(), window=0), "service_stats.window"),
        (stats(figures(), window=7200), "service_stats.window"),  # beyond the badge window
        (stats(*[figures(f"f{i}") for i in range(1001)]), "service_stats.flows"),
        (
            stats(figures(successes=0, failures=0, p50_seconds=1, p95_seconds=2)),
            "service_stats.flows[0].p95_seconds",
        ),
    ]
    for forged, field in cases:
        request = rpb.HeartbeatRequest(node_id="node-h", service_stats=forged)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await node.Heartbeat(request, timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (caught.value.details() or ""), (field, caught.value.details())
    # Nothing of it was kept; and no node reports for another.
    assert daemon.registry.service.reports == {}
    other = connect(daemon, pki.node("node-x"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await other.Heartbeat(
            rpb.HeartbeatRequest(node_id="node-h", service_stats=stats(figures())), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_availability_is_what_the_registry_saw_of_the_lease(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki, clock: ManualClock
) -> None:
    """Offline half the window (its lease ran out): availability 0.5, below gold on it alone."""
    daemon = await start_registry(badges=BADGES)
    node = connect(daemon, pki.node("node-b"))
    await node.RegisterNode(register_request("node-b", [flow_pb("search")]), timeout=5)
    clock.advance(1800)
    assert await daemon.registry.sweep() == ["node-b"]  # no heartbeat: OFFLINE from here
    clock.advance(1800)
    beat = rpb.HeartbeatRequest(node_id="node-b", service_stats=stats(figures()))
    await node.Heartbeat(beat, timeout=5)  # back ONLINE, with good figures
    changes = await daemon.evaluate_service()
    assert [(c.action, c.level) for c in changes] == [("issued", "silver")]
    measure = daemon.registry.service.measures[("node-b", "search")]
    assert measure.availability == pytest.approx(0.5)


async def test_availability_survives_a_compacted_change_log(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki, clock: ManualClock
) -> None:
    """The node's ONLINE change compacted away: it has been online since it changed to it
    (before, a node with no retained change counted as never online)."""
    daemon = await start_registry(badges=BADGES, change_retention=1)
    node = connect(daemon, pki.node("node-c"))
    await node.RegisterNode(
        register_request("node-c", [flow_pb("search")], interval=300), timeout=5
    )
    other = connect(daemon, pki.node("node-d"))
    await other.RegisterNode(register_request("node-d", [flow_pb("x")], interval=300), timeout=5)
    clock.advance(600)
    await node.Heartbeat(rpb.HeartbeatRequest(node_id="node-c"), timeout=5)
    await daemon.registry.sweep()  # compacts the log down to its last change
    store = daemon.registry.store
    changes = await store.changes_after(await store.compacted_revision(), 100)
    assert [c.node_id for c in changes] == ["node-d"]
    clock.advance(3000)
    beat = rpb.HeartbeatRequest(node_id="node-c", service_stats=stats(figures()))
    await node.Heartbeat(beat, timeout=5)
    await daemon.evaluate_service()
    measure = daemon.registry.service.measures[("node-c", "search")]
    assert measure.availability == pytest.approx(1.0)


async def test_a_restarted_registry_keeps_held_levels_until_nodes_could_report(
    start_registry: RegistryFactory,
    connect: StubFactory,
    pki: Pki,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    """Reports live in memory: after a restart the held badges are taken up from the auth
    store and not revoked before every node had time to heartbeat again."""
    first = await start_registry(tmp_path / "reg", badges=BADGES)
    node = connect(first, pki.node("node-r"))
    await node.RegisterNode(register_request("node-r", [flow_pb("search")]), timeout=5)
    clock.advance(3600)
    beat = rpb.HeartbeatRequest(node_id="node-r", service_stats=stats(figures()))
    await node.Heartbeat(beat, timeout=5)
    (issued,) = await first.evaluate_service()
    await first.stop(grace=0)

    again = await start_registry(tmp_path / "reg", badges=BADGES)
    assert again.registry.service.level_of("node-r", "search") == ("gold", issued.badge_id)
    assert await again.evaluate_service() == []  # no figures yet: nothing revoked
    clock.advance(361)  # restart grace + the longest heartbeat interval
    (revoked,) = await again.evaluate_service()
    assert (revoked.action, revoked.reason) == (
        "revoked",
        "below gold: nothing measured within the window",
    )


async def test_generated_statistics_are_answered_ok_or_invalid_argument(
    start_registry: RegistryFactory, connect: StubFactory, pki: Pki
) -> None:
    """Whatever figures a node makes up: OK or INVALID_ARGUMENT, never INTERNAL."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    daemon = await start_registry(badges=BADGES)
    node = connect(daemon, pki.node("node-f"))
    await node.RegisterNode(register_request("node-f", [flow_pb("search")]), timeout=5)
    tls = pki.node("node-f")
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)
    counts = st.integers(0, 2**32 - 1)
    seconds_ = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 100)
    entry = st.builds(
        rpb.FlowServiceStats,
        flow=st.sampled_from(["search", "other", ""]),
        runs=counts,
        successes=counts,
        failures=counts,
        p50_seconds=seconds_,
        p95_seconds=seconds_,
    )
    window = st.floats(-1e6, 1e7) | st.just(3600.0)

    def heartbeat(channel: grpc.Channel, stats_: rpb.ServiceStats) -> grpc.StatusCode:
        call = channel.unary_unary(
            "/kodosumi.v1.RegistryService/Heartbeat",
            rpb.HeartbeatRequest.SerializeToString,
            rpb.HeartbeatResponse.FromString,
        )
        try:
            call(rpb.HeartbeatRequest(node_id="node-f", service_stats=stats_), timeout=5)
        except grpc.RpcError as e:
            return e.code()  # type: ignore[attr-defined, no-any-return]
        return grpc.StatusCode.OK

    seen: set[grpc.StatusCode] = set()

    def fuzz() -> None:
        with grpc.secure_channel(
            daemon.address, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
        ) as channel:

            @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
            @given(flows=st.lists(entry, max_size=3), seconds=window)
            def check(flows: list[rpb.FlowServiceStats], seconds: float) -> None:
                report = rpb.ServiceStats(flows=flows)
                report.window.FromNanoseconds(int(seconds * 1e9))
                code = heartbeat(channel, report)
                assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), code
                seen.add(code)

            check()
            # Both answers occur (hypothesis tries the empty report, which is fine).
            assert heartbeat(channel, rpb.ServiceStats(flows=[figures(p95_seconds=-1)])) in seen

    await asyncio.to_thread(fuzz)
    assert seen == {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    await daemon.evaluate_service()  # whatever was kept measures without a fault
