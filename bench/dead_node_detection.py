"""How long the registry takes to mark a dead node OFFLINE, against the lease TTL.

A real `registryd` runs in a child process with the lease rules of `docs/registry.md`
(TTL = heartbeat interval x `lease.ttl_factor`, a sweep every `lease.sweep_interval`). Each
trial node is a child process running the node's own registration code
(`kodosumid.network.registration.Registration` over
`kodosumid.network.registry_client.RegistryClient`, mTLS with a node certificate),
heartbeating every `--interval` seconds. Once all are ONLINE, each is failed at a random
moment (so at a random phase of its heartbeat cycle):

- **SIGKILL**: the process dies; its connections close.
- **SIGSTOP**: its heartbeats stop, but the process and its connections stay (a hung node).

A watcher in this process follows `WatchRegistry` and records, per node, the registry's time
of the NODE_OFFLINE change and the moment the watcher received it. The table shows the
delay from the failure to the OFFLINE mark (p50/p95/max) beside the configured lease TTL:
the mark can come at most TTL + one sweep interval after the last heartbeat, so the target
is max <= TTL + sweep interval.

    .venv/bin/python -m bench.dead_node_detection [--quick] [--trials 10] [--interval 1]

Not run by the tests; `bench/__main__.py` may list it as `dead-node` (`benchmark(quick)`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.dead_node_processes import (
    DOMAIN,
    SWEEP_INTERVAL,
    TTL_FACTOR,
    Registry,
    child_env,
    issue_nodes,
    serve_node,
    spawn,
    start_registry,
    until,
)
from kodoclient.auth import RegistryTarget
from kodoclient.registry import RegistryClient
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import registry_pb2 as rpb

if TYPE_CHECKING:
    from bench.report import Result

# Allowance for the sweep's own work and a heartbeat in flight at the moment of failure.
SLACK = 0.25
MODES = {"SIGKILL": signal.SIGKILL, "SIGSTOP": signal.SIGSTOP}
ONLINE_DEADLINE = 90.0


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Watcher:
    """Follows the registry's changes: when each node came ONLINE and went OFFLINE."""

    client: RegistryClient
    online: set[str] = field(default_factory=set)
    # node id -> (registry time of the OFFLINE change, receive time, last heartbeat), epoch s
    offline: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        async for item in self.client.watch_registry(0):
            if not isinstance(item, rpb.RegistryChange):
                continue
            if item.kind == rpb.REGISTRY_CHANGE_KIND_NODE_ONLINE:
                self.online.add(item.node_id)
            elif item.kind == rpb.REGISTRY_CHANGE_KIND_NODE_OFFLINE:
                self.offline[item.node_id] = (
                    item.time.ToNanoseconds() / 1e9,
                    time.time(),
                    item.node.last_heartbeat_time.ToNanoseconds() / 1e9,
                )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


@dataclass(frozen=True, slots=True)
class Trial:
    mode: str
    detected: float  # failure -> OFFLINE in the registry, seconds
    seen: float  # failure -> a watcher received it
    lease_age: float  # last heartbeat -> OFFLINE


async def run_wave(
    mode: str,
    trials: int,
    interval: float,
    registry: Registry,
    pki: Path,
    watcher: Watcher,
    rng: random.Random,
) -> list[Trial]:
    """Start `trials` nodes, fail each at a random moment the `mode` way, time the marks."""
    node_ids = [f"{mode.lower()}-{i}" for i in range(trials)]
    nodes: dict[str, subprocess.Popen[bytes]] = {}
    failed_at: dict[str, float] = {}
    try:
        for node_id in node_ids:
            nodes[node_id] = spawn(
                [
                    "bench.dead_node_detection",
                    "--serve-node",
                    node_id,
                    "--registry",
                    registry.address,
                    "--pki",
                    str(pki),
                    "--interval",
                    str(interval),
                ],
                child_env(),
            )
        await until(
            lambda: watcher.online >= set(node_ids),
            ONLINE_DEADLINE,
            f"{trials} trial nodes are ONLINE",
            registry.process,
            *nodes.values(),
        )

        async def fail(node_id: str) -> None:
            # One to two intervals on: a random phase of the node's heartbeat cycle.
            await asyncio.sleep(rng.uniform(interval, 2 * interval))
            failed_at[node_id] = time.time()
            os.kill(nodes[node_id].pid, MODES[mode])

        await asyncio.gather(*(fail(n) for n in node_ids))
        bound = interval * TTL_FACTOR + SWEEP_INTERVAL
        await until(
            lambda: all(n in watcher.offline for n in node_ids),
            bound * 3 + 5,
            f"the registry marks {trials} {mode} nodes OFFLINE",
            registry.process,
        )
    finally:
        for process in nodes.values():
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # SIGKILL also ends a stopped process
            process.wait()
    results = []
    for node_id in node_ids:
        marked, received, last_beat = watcher.offline[node_id]
        failed = failed_at[node_id]
        results.append(Trial(mode, marked - failed, received - failed, marked - last_beat))
    return results


def tables(trials: list[Trial], interval: float) -> Result:
    from bench.report import Figure, Result, Table, fmt, percentile

    ttl = interval * TTL_FACTOR
    bound = ttl + SWEEP_INTERVAL
    rows = []
    figures = []
    for mode in MODES:
        mine = [t for t in trials if t.mode == mode]
        if not mine:
            continue
        detected = sorted(t.detected for t in mine)
        seen = sorted(t.seen for t in mine)
        ages = sorted(t.lease_age for t in mine)
        rows.append(
            [
                mode,
                str(len(mine)),
                fmt(percentile(detected, 50), "s"),
                fmt(percentile(detected, 95), "s"),
                fmt(detected[-1], "s"),
                fmt(detected[0], "s"),
                fmt(percentile(seen, 95), "s"),
                fmt(ages[-1], "s"),
            ]
        )
        figures.append(
            Figure(
                benchmark="dead-node",
                what=f"{mode} -> OFFLINE, p95",
                value=percentile(detected, 95),
                unit="s",
                baseline_what="lease TTL",
                baseline=ttl,
                target=f"max <= TTL + sweep ({bound:g} s)",
                met=detected[-1] <= bound + SLACK,
            )
        )
    table = Table(
        f"dead node -> OFFLINE (heartbeat every {interval:g} s, lease TTL {ttl:g} s, "
        f"sweep every {SWEEP_INTERVAL:g} s)",
        ["failure", "trials", "p50", "p95", "max", "min", "seen p95", "lease age max"],
        rows,
        notes=[
            "p50/p95/max/min: from the failure to the registry's OFFLINE change; seen: to a",
            "watcher receiving it; lease age: from the node's last heartbeat to the change.",
            f"Expected: between TTL - interval ({ttl - interval:g} s) and TTL + sweep "
            f"({bound:g} s) after the failure.",
        ],
    )
    return Result(tables=[table], figures=figures)


async def measure(trials: int, interval: float, modes: list[str], seed: int | None) -> Result:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kb-dead-") as tmp:
        folder = Path(tmp)
        pki = folder / "pki"
        pki.mkdir()
        ca = CertificateAuthority.create(DOMAIN, pki / "ca.pem", pki / "ca.key")
        issue_nodes(ca, pki, [f"{m.lower()}-{i}" for m in modes for i in range(trials)])
        user_cert, user_key = ca.issue(SpiffeId.user(DOMAIN, "bench"))
        user = TlsMaterial(cert_pem(ca.cert), cert_pem(user_cert), key_pem(user_key))
        registry = await start_registry(folder, pki)
        try:
            async with RegistryClient(RegistryTarget(registry.address, user, 5.0)) as client:
                watcher = Watcher(client)
                watcher.start()
                try:
                    results: list[Trial] = []
                    for mode in modes:
                        results += await run_wave(
                            mode, trials, interval, registry, pki, watcher, rng
                        )
                finally:
                    await watcher.close()
        finally:
            registry.stop()
    return tables(results, interval)


async def benchmark(quick: bool) -> Result:
    """The runner's entry (`bench/__main__.py`): 10 trials per failure mode, 3 when quick."""
    return await measure(3 if quick else 10, 1.0, list(MODES), None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dead_node_detection", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 trials per failure mode")
    parser.add_argument("--trials", type=int, help="trials per failure mode (default 10)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="heartbeat interval, seconds (>= 1)"
    )
    parser.add_argument(
        "--mode", choices=[*MODES, "both"], default="both", help="how the nodes fail"
    )
    parser.add_argument("--seed", type=int, help="seed of the failure moments")
    # The child side: one trial node.
    parser.add_argument("--serve-node", metavar="NODE_ID", help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_node:
        asyncio.run(serve_node(args.serve_node, args.registry, args.pki, args.interval))
        return

    from bench import hermetic
    from bench.report import summary

    hermetic.enter()
    try:
        trials = args.trials or (3 if args.quick else 10)
        modes = list(MODES) if args.mode == "both" else [args.mode]
        started = time.perf_counter()
        result = asyncio.run(measure(trials, args.interval, modes, args.seed))
    finally:
        hermetic.leave()
    for table in result.tables:
        print(table.render(), end="\n\n")
    print(summary(result.figures).render())
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
