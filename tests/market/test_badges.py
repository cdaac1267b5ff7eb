"""Badges from measured service and the market view over the real stack: a node on the
session's Ray reports what its runs did in its heartbeats, the registry (mTLS, SQLite, an
injected clock) measures it, issues a signed level `koco verify` checks offline, revokes it
when the node degrades (`koco verify --online` sees that), and `koco market` filters and
sorts the network's flows."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from decimal import Decimal

from kodosumi.badges import verify_badge
from kodosumi.pricing import Price
from kodosumi.v1 import event_pb2
from kodosumid.app import NodeApp
from kodosumid.config import FlowEntry
from kodosumid.event_store import MemoryEventStore
from kodosumid.network.service_stats import ServiceStatsMeter
from registryd.clock import ManualClock
from registryd.config import BadgeLevel, BadgesConfig
from registryd.daemon import RegistryDaemon
from registryd.model import NodeQuery
from tests.market.test_prices import koco
from tests.node.conftest import node_config
from tests.node.helpers import collect, eventually, launch, statuses
from tests.peers.conftest import NO_LAN, PEERS, REGISTRY_LINK, Cluster
from tests.registry.conftest import registry_config

SUCCEEDED, FAILED = event_pb2.EXECUTION_STATUS_SUCCEEDED, event_pb2.EXECUTION_STATUS_FAILED
BADGES = BadgesConfig(
    window=3600,
    lifetime=3600,
    levels={
        "gold": BadgeLevel(success_rate=0.99, p95_seconds=30, availability=0.99, min_runs=3),
        "silver": BadgeLevel(success_rate=0.5, min_runs=1),
    },
)
FLOWS = (
    FlowEntry(
        "choosy",
        "tests.flowlib:flaky",
        tags=("market",),
        price=Price("EUR", per_run=Decimal("0.20")),
    ),
    FlowEntry("hello", "tests.flowlib:hello", tags=("demo",), price=Price("EUR", Decimal("0.05"))),
    FlowEntry("chatty", "tests.flowlib:chatty", description="talks a lot"),
)


async def _node(cluster: Cluster, registry: RegistryDaemon) -> NodeApp:
    config = node_config(
        cluster.folder / "node-m",
        node_id="node-m",
        flows=FLOWS,
        tls=cluster.pki.node_tls("node-m"),
        registry_address=registry.address,
        # Fresh figures with every heartbeat (30 s by default).
        registry=replace(REGISTRY_LINK, stats_refresh_seconds=0.1),
        discovery=NO_LAN,
        peers=PEERS,
    )
    app = NodeApp(config)
    await app.start()
    cluster.nodes.append(app)
    return app


async def _run(app: NodeApp, cluster: Cluster, flow: str, **inputs: object) -> int:
    client = cluster.client(app.address)
    events = await collect(client.flows, await launch(client.flows, flow, inputs))
    return statuses(events)[-1]


async def test_a_node_earns_a_level_loses_it_and_the_market_shows_it(cluster: Cluster) -> None:
    # An hour ago: once the test moves it on by the window, badges are issued about now.
    clock = ManualClock(time.time() - 3600)
    registry = RegistryDaemon(
        registry_config(cluster.folder / "registry", cluster.pki.pki, badges=BADGES),
        clock=clock,
        run_sweeper=False,
    )
    await registry.start()
    cluster.registries.append(registry)
    app = await _node(cluster, registry)
    await eventually(lambda: _registered(registry), timeout=30)
    clock.advance(3600)  # online for the whole window, as the registry saw it

    # hello first: a report with all three choosy runs has it too.
    assert await _run(app, cluster, "hello") == SUCCEEDED
    for _ in range(3):
        assert await _run(app, cluster, "choosy", fail_times=0) == SUCCEEDED

    async def holds(level: str, runs: int) -> bool:
        # Measure once the node's heartbeat carried every run (under load it comes late).
        report = registry.registry.service.reports.get("node-m")
        choosy = report.flow("choosy") if report is not None else None
        if choosy is None or choosy.runs < runs:
            return False
        await registry.evaluate_service()
        return registry.registry.service.level_of("node-m", "choosy")[0] == level

    await eventually(lambda: holds("gold", 3), timeout=60, interval=0.3)
    measure = registry.registry.service.measures[("node-m", "choosy")]
    assert (measure.runs, measure.successes, measure.availability) == (3, 3, 1.0)

    registry_option = ("--registry", registry.address)
    verified = await koco(
        cluster, app.address, "verify", "--node", "node-m", "--flow", "choosy", *registry_option
    )
    assert verified.exit_code == 0, verified.output
    assert "service-level badge gold" in verified.output
    assert "3 runs, 3 succeeded, 0 failed, success 100.0%" in verified.output
    assert "gold needs: success_rate >= 0.99, p95 <= 30 s" in verified.output

    async def market(*args: str) -> list[str]:
        result = await koco(cluster, app.address, "--json", "market", *args, *registry_option)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["flow"]["name"] for line in result.stdout.splitlines()]

    assert await market("--sort", "price") == ["chatty", "hello", "choosy"]
    assert await market("--sort", "name") == ["chatty", "choosy", "hello"]
    assert await market("--badge", "gold") == ["choosy"]
    assert await market("--badge", "silver", "--sort", "name") == ["choosy", "hello"]
    assert await market("--max-price", "0.10", "--currency", "EUR") == ["chatty", "hello"]
    assert await market("--max-price", "0.10", "--currency", "USD") == ["chatty"]
    assert await market("--text", "TALKS") == ["chatty"]
    assert await market("--tag", "market") == ["choosy"]
    assert sorted(await market("--max-p95", "60")) == ["choosy", "hello"]  # measured ones
    table = await koco(cluster, app.address, "market", "--sort", "p95", *registry_option)
    assert table.exit_code == 0, table.output
    assert "BADGE" in table.output and "gold" in table.output and "EUR 0.2" in table.output
    bad = await koco(cluster, app.address, "market", "--badge", "platinum", *registry_option)
    assert bad.exit_code != 0 and "min_badge_level" in bad.output

    gold = await _token(cluster, registry)
    for _ in range(2):
        assert await _run(app, cluster, "choosy", fail_times=1) == FAILED
    await eventually(lambda: holds("silver", 5), timeout=60, interval=0.3)
    # Offline the gold badge still verifies until it expires; the registry says it is revoked.
    assert verify_badge(gold, cluster.pki.pki.ca.cert, now=clock.now()).facts["level"] == "gold"
    checked = await koco(cluster, app.address, "verify", gold, "--online", *registry_option)
    assert checked.exit_code == 5, checked.output
    assert "revoked by the registry: downgraded to silver: success_rate 0.6 < 0.99" in (
        checked.output
    )
    assert await market("--badge", "gold") == []


async def _registered(registry: RegistryDaemon) -> bool:
    offers, _ = await registry.registry.list_flow_offers(NodeQuery())
    return len(offers.offers) == len(FLOWS)


async def _token(cluster: Cluster, registry: RegistryDaemon) -> str:
    assert registry.auth is not None and registry.auth.badges is not None
    (badge,) = await registry.auth.badges.list("node-m", "choosy")
    assert badge.level == "gold"
    return badge.token


async def test_the_meter_counts_ends_reads_bounded_and_caches() -> None:
    """Per offered flow: runs, successes, failures (cancellations are runs only), p50/p95 of
    run times; at most `max_runs` ends read, the store read once per refresh."""
    from kodosumi.v1 import event_pb2 as e
    from kodosumid.event_store import StatusChange
    from tests.event_store.helpers import FakeClock, event, record

    clock = FakeClock(0)
    store = MemoryEventStore(clock=clock)
    ends = [(1, e.EXECUTION_STATUS_SUCCEEDED), (2, e.EXECUTION_STATUS_SUCCEEDED)]
    ends += [(4, e.EXECUTION_STATUS_FAILED), (8, e.EXECUTION_STATUS_CANCELLED)]
    for i, (seconds, status) in enumerate(ends):
        eid = f"r{i}"
        await store.create_execution(record(eid, flow="a"), [event(eid, 1)])
        clock.now = 100 * 10**9
        running = StatusChange(2, e.EXECUTION_STATUS_RUNNING, "")
        await store.append({eid: (2, [event(eid, 2)])}, {eid: [running]})
        clock.now = (100 + seconds) * 10**9
        await store.append({eid: (3, [event(eid, 3)])}, {eid: [StatusChange(3, status, "")]})
    await store.create_execution(record("other", flow="gone"), [event("other", 1)])
    now = [200.0]
    meter = ServiceStatsMeter(store, lambda: ["a"], refresh_seconds=30, now=lambda: now[0])
    report = await meter.report(3600)
    (a,) = report.flows
    assert (a.flow, a.runs, a.successes, a.failures) == ("a", 4, 2, 1)
    assert (a.p50_seconds, a.p95_seconds) == (2.0, 4.0)
    assert report.window.ToSeconds() == 3600
    assert (await meter.report(3600)) is report and meter.reads == 1  # cached
    now[0] += 31
    bounded = ServiceStatsMeter(store, lambda: ["a"], max_runs=2, now=lambda: now[0])
    (newest,) = (await bounded.report(3600)).flows
    assert newest.runs == 2  # the two newest ends only
    assert (await bounded.report(50)).flows == []  # nothing ended in the last 50 s
