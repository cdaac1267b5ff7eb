"""Fan-out in real time (issue 10): 1,000 watchers of one execution emitting 200 events/s.

The node runs as a subprocess (`bench/fanout.toml`); `bench.flows:paced` waits until the
watchers are attached, then emits progress events at the rate, each stamped when emitted.
The watchers are two client processes (`bench/fanout_client.py`, half the streams each),
which record receive time minus event time for every event and check that each stream got
every event, in order. Baseline, same run, same clients: `bench/raw_fanout_server.py`, a
bare grpc.aio server (mTLS) making the same events at the same rate in its own process and
streaming pre-serialized bytes to the same number of streams.

Figures: added lag p50/p95/p99 (ms) of the node and of the baseline, the node's RSS growth
(VmRSS from /proc, before the watchers attach → peak during the run), streams complete.
Goal: p95 <= 100 ms, p99 <= 250 ms, RSS growth <= 100 MB, every watcher every event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from bench import hermetic
from bench.report import Figure, Result, Table, fmt, percentile
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import dev_client_files, pki_dir
from kodosumi.v1 import flow_pb2, flow_pb2_grpc, node_pb2, node_pb2_grpc

NAME = "fanout"
REPO = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).with_name("fanout.toml")
RATE = 200.0
CLIENTS = 2
NODE_METHOD = "/kodosumi.v1.FlowService/WatchExecution"
RAW_METHOD = "/bench.Raw/Watch"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


class Peak:
    """The largest RSS of a process, polled every 0.2 s while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.value = pid, rss(pid)
        self._task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(0.2)

    def _sample(self) -> None:
        # A process that ended keeps the peak that was seen.
        with contextlib.suppress(FileNotFoundError):
            self.value = max(self.value, rss(self.pid))

    def stop(self) -> int:
        self._task.cancel()
        self._sample()
        return self.value


async def _clients(
    address: str, certs: Path, method: str, execution_id: str, streams: int, expect: int
) -> dict[str, object]:
    outs = [hermetic.scratch("fanout-out-") / "out.json" for _ in range(CLIENTS)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fanout_client",
            address,
            str(certs),
            method,
            execution_id,
            str(streams // CLIENTS),
            str(expect),
            str(out),
            cwd=REPO,
        )
        for out in outs
    ]
    await asyncio.gather(*(p.wait() for p in procs))
    lags: list[float] = []
    complete, errors = 0, []
    for out in outs:
        data = json.loads(out.read_text())
        lags += data["lags"]
        complete += data["complete"]
        errors += data["error"]
    return {"lags": lags, "complete": complete, "errors": errors}


async def _start(args: list[str], log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=REPO, stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT
    )


def _read(path: Path) -> str:
    """The file's text, "" while it does not exist yet."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


async def _wait_file(path: Path, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 90
    while not _read(path):
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} never appeared")
        await asyncio.sleep(0.05)


async def node_round(streams: int, count: int) -> dict[str, object]:
    state = hermetic.scratch("fanout-node-")
    node = await _start(
        ["-m", "kodosumid", "--config", str(CONFIG), "--state-dir", str(state),
         "--listen", "127.0.0.1:0", "--log-level", "WARNING"],
        state.parent / f"{state.name}.log",
    )  # fmt: skip
    try:
        await _wait_file(state / "node.json", node)
        address = json.loads((state / "node.json").read_text())["address"]
        channel = open_channel(
            address, dev_client_files(state).read(), expect=ServerExpectation.node()
        )
        flows = flow_pb2_grpc.FlowServiceStub(channel)
        nodes = node_pb2_grpc.NodeServiceStub(channel)
        # Warm-up: the executor starts and runs the flow once.
        inputs = {"rate": RATE, "count": 10, "start_after": 0.0}
        warm = await flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="paced", inputs=dict_to_struct(inputs)),
            timeout=60,
        )
        async for _ in flows.WatchExecution(
            flow_pb2.WatchExecutionRequest(execution_id=warm.execution.execution_id), timeout=60
        ):
            pass
        assert node.pid is not None
        before = rss(node.pid)
        start_after = 8.0 + streams / 250
        inputs = {"rate": RATE, "count": count, "start_after": start_after}
        launched = await flows.LaunchExecution(
            flow_pb2.LaunchExecutionRequest(flow="paced", inputs=dict_to_struct(inputs)),
            timeout=60,
        )
        peak = Peak(node.pid)
        clients = asyncio.ensure_future(
            _clients(
                address,
                pki_dir(state),
                NODE_METHOD,
                launched.execution.execution_id,
                streams,
                count,
            )
        )
        attached_in = -1.0
        t0 = time.monotonic()
        while time.monotonic() - t0 < start_after:
            info = await nodes.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)
            if info.node.load.watchers >= streams:
                attached_in = time.monotonic() - t0
                break
            await asyncio.sleep(0.2)
        result = await clients
        result["rss_growth"] = peak.stop() - before
        result["attached_in"] = attached_in
        await channel.close()
        return result
    finally:
        if node.returncode is None:
            node.terminate()
            try:
                await asyncio.wait_for(node.wait(), 30)
            except TimeoutError:
                node.kill()
                await node.wait()


async def raw_round(certs: Path, streams: int, count: int) -> dict[str, object]:
    scratch = hermetic.scratch("fanout-raw-")
    port_file = scratch / "port"
    raw = await _start(
        ["-m", "bench.raw_fanout_server", str(certs), str(port_file), str(streams),
         str(RATE), str(count)],
        scratch / "raw.log",
    )  # fmt: skip
    try:
        await _wait_file(port_file, raw)
        assert raw.pid is not None
        before = rss(raw.pid)
        peak = Peak(raw.pid)
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        result = await _clients(address, certs, RAW_METHOD, "raw", streams, count)
        result["rss_growth"] = peak.stop() - before
        return result
    finally:
        if raw.returncode is None:
            raw.kill()
            await raw.wait()


def _row(what: str, result: dict[str, object], streams: int) -> list[str]:
    lags = sorted(result["lags"])  # type: ignore[call-overload]
    p = [percentile(lags, q) for q in (50, 95, 99)] if lags else [float("nan")] * 3
    return [
        what,
        str(streams),
        fmt(p[0]),
        fmt(p[1]),
        fmt(p[2]),
        fmt(max(lags) if lags else float("nan")),
        fmt(int(result["rss_growth"]) / 2**20),  # type: ignore[call-overload]
        f"{result['complete']}/{streams}",
    ]


async def benchmark(quick: bool) -> Result:
    streams = 500 if quick else 1000
    seconds = 10 if quick else 20
    count = int(RATE * seconds)
    node = await node_round(streams, count)
    # The raw server uses the certificates of the node's (removed) state dir: make its own.
    certs = hermetic.scratch("fanout-pki-")
    from kodosumi.tls import ensure_dev_pki

    ensure_dev_pki(certs, "raw-node")
    raw = await raw_round(pki_dir(certs), streams, count)
    rows = [_row("baseline: raw grpc.aio, pre-serialized", raw, streams)]
    rows.append(_row("node: paced flow → store → fan-out", node, streams))
    notes = [
        f"{count} events at {RATE:.0f}/s; watchers attached in {node['attached_in']:.1f} s"
        f" (-1: not all before the first event); load average "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]
    notes += [f"errors: {e}" for e in (node["errors"] + raw["errors"])[:3]]  # type: ignore[operator]
    table = Table(
        f"fan-out: {streams} watchers of one execution at {RATE:.0f} events/s",
        ["stream source", "watchers", "p50 ms", "p95 ms", "p99 ms", "max ms", "RSS +MiB",
         "complete"],
        rows,
        notes,
    )  # fmt: skip
    lags = sorted(node["lags"])  # type: ignore[call-overload]
    raw_lags = sorted(raw["lags"])  # type: ignore[call-overload]
    figures = []
    if lags and raw_lags:
        for q, target in ((95, 100.0), (99, 250.0)):
            value = percentile(lags, q)
            figures.append(
                Figure(NAME, f"lag p{q}, {streams} watchers", value, "ms",
                       "raw grpc.aio", percentile(raw_lags, q), f"<= {target:.0f} ms",
                       value <= target)
            )  # fmt: skip
    growth = int(node["rss_growth"]) / 2**20  # type: ignore[call-overload]
    figures.append(
        Figure(NAME, f"node RSS growth, {streams} watchers", growth, "MiB",
               "raw grpc.aio", int(raw["rss_growth"]) / 2**20, "<= 100 MB",  # type: ignore[call-overload]
               growth <= 100 and node["complete"] == streams)
    )  # fmt: skip
    return Result([table], figures)
