"""The marketplace gateway's HTTP figures (issue 16): `/start_job` and `/status` requests/s
beside a bare uvicorn endpoint, and the latency a purchase over MIP-003 adds to a direct gRPC
launch, all in one run.

- The node runs in this process (embedded Ray, the bench flows); `kodogate` and the bare
  uvicorn server (`bench.bare_http_server`) are subprocesses, reached by one httpx client.
- Requests/s: sequential requests, then 8 at once; the baseline is the same request to the
  bare server (FastAPI validation, no store, no node).
- Latency: `bench.flows:noop` bought with `/start_job` and followed with `/status` polls
  (every 5 ms) to `completed`, against LaunchExecution + WatchExecution to SUCCEEDED on
  the same node. Medians; the gateway's free backend (no payment wait).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import hermetic
from bench.node import REPO, running_node
from bench.report import Figure, Result, Table, fmt
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import pki_dir
from kodosumid.config import PoolConfig

NAME = "gateway"


def _spawn(args: list[str], log: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"{args} did not start: {log.read_text()[-2000:]}")
    return process, line.split("listening on", 1)[1].strip()


def _gateway_config(folder: Path, node_address: str) -> Path:
    path = folder / "gateway.toml"
    path.write_text(
        "\n".join(
            [
                "[gateway]",
                'id = "bench"',
                'listen = "127.0.0.1:0"',
                f'state_dir = "{folder}"',
                "[nodes.local]",
                f'address = "{node_address}"',
                "[payments]",
                'backend = "free"',
                "poll_interval_seconds = 0.01",
                "[[services]]",
                'path = "noop"',
                'flow = "noop"',
                "",
            ]
        )
    )
    return path


async def _rate(client: httpx.AsyncClient, make: object, count: int, parallel: int) -> float:
    counter = iter(range(count))

    async def worker() -> None:
        for i in counter:
            response = await make(client, i)  # type: ignore[operator]
            response.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    return count / (time.perf_counter() - start)


async def benchmark(quick: bool) -> Result:
    count = 100 if quick else 400
    rounds = 10 if quick else 30
    folder = hermetic.scratch("gateway-")
    pool = PoolConfig(shared_executors=1, warm_executors=0)
    async with running_node(NAME, pool) as node:
        state = node.app.config.state_dir
        ca = CertificateAuthority.load(pki_dir(state) / "ca.pem", pki_dir(state) / "ca.key")
        cert, key = ca.issue(SpiffeId.gateway(ca.trust_domain, "bench"))
        identity = folder / "identity"
        identity.mkdir(parents=True, exist_ok=True)
        write_public(identity / "ca.pem", cert_pem(ca.cert))
        write_public(identity / "cert.pem", cert_pem(cert))
        write_private(identity / "key.pem", key_pem(key))
        config = _gateway_config(folder, node.app.address)
        gateway, gateway_url = await asyncio.to_thread(
            _spawn, ["-m", "gateway", "serve", "--config", str(config)], folder / "gateway.log"
        )
        bare, bare_url = await asyncio.to_thread(
            _spawn, ["-m", "bench.bare_http_server"], folder / "bare.log"
        )
        try:
            async with httpx.AsyncClient(
                timeout=60, limits=httpx.Limits(max_connections=16)
            ) as http:
                body: dict[str, object] = {"input_data": {}}

                def start_on(base: str, tag: str) -> object:
                    async def make(client: httpx.AsyncClient, i: int) -> httpx.Response:
                        purchaser = f"{tag}-{time.monotonic_ns()}-{i}"
                        return await client.post(
                            f"{base}/start_job",
                            json={**body, "identifier_from_purchaser": purchaser},
                        )

                    return make

                first = await http.post(
                    f"{gateway_url}/noop/start_job", json={"identifier_from_purchaser": "warm"}
                )
                job_id = first.json()["id"]

                def status_on(base: str) -> object:
                    async def make(client: httpx.AsyncClient, i: int) -> httpx.Response:
                        return await client.get(f"{base}/status", params={"job_id": job_id})

                    return make

                rates: dict[str, tuple[float, float]] = {}
                for label, parallel in (("sequential", 1), ("8 at once", 8)):
                    rates[f"start_job {label}"] = (
                        await _rate(http, start_on(f"{gateway_url}/noop", "g"), count, parallel),
                        await _rate(http, start_on(bare_url, "b"), count, parallel),
                    )
                    rates[f"status {label}"] = (
                        await _rate(http, status_on(f"{gateway_url}/noop"), count, parallel),
                        await _rate(http, status_on(bare_url), count, parallel),
                    )
                # Let the launched jobs drain before timing latencies.
                await asyncio.sleep(2.0)
                direct: list[float] = []
                bought: list[float] = []
                for i in range(rounds):
                    start = time.perf_counter()
                    await node.wait_terminal(await node.launch("noop"))
                    direct.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    started = await http.post(
                        f"{gateway_url}/noop/start_job",
                        json={"identifier_from_purchaser": f"lat-{i}-{time.monotonic_ns()}"},
                    )
                    jid = started.json()["id"]
                    while True:
                        status = await http.get(
                            f"{gateway_url}/noop/status", params={"job_id": jid}
                        )
                        if status.json()["status"] in ("completed", "failed"):
                            break
                        await asyncio.sleep(0.005)
                    bought.append(time.perf_counter() - start)
        finally:
            gateway.terminate()
            bare.terminate()
            await asyncio.to_thread(gateway.wait, 30)
            await asyncio.to_thread(bare.wait, 30)
    rows = [
        [what, fmt(ours, "req/s"), fmt(base, "req/s"), f"{ours / base:.2f}"]
        for what, (ours, base) in rates.items()
    ]
    d, b = statistics.median(direct) * 1000, statistics.median(bought) * 1000
    tables = [
        Table(
            f"gateway HTTP ({count} requests each; baseline: bare uvicorn + FastAPI)",
            ["request", "kodogate", "bare uvicorn", "ratio"],
            rows,
        ),
        Table(
            f"a noop flow to its end ({rounds} rounds, medians)",
            ["path", "latency"],
            [
                ["gRPC LaunchExecution + WatchExecution", fmt(d, "ms")],
                ["MIP-003 start_job + /status polls", fmt(b, "ms")],
                ["added by the gateway", fmt(b - d, "ms")],
            ],
        ),
    ]
    seq, polls = rates["start_job sequential"], rates["status sequential"]
    figures = [
        Figure(NAME, "start_job req/s", seq[0], "req/s", "bare uvicorn", seq[1]),
        Figure(NAME, "status req/s", polls[0], "req/s", "bare uvicorn", polls[1]),
        Figure(NAME, "bought noop latency", b, "ms", "direct gRPC", d),
    ]
    return Result(tables, figures)
