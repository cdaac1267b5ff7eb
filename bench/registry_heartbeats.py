"""Heartbeats per second the registry sustains, beside a raw grpc.aio unary baseline.

Both servers run in their own process with the same mTLS credentials and the same request and
response messages (`HeartbeatRequest` / `HeartbeatResponse`); the baseline answers from a plain
grpc.aio handler without interceptor, authorization or domain. The load generator runs in this
process: `--nodes` registered nodes, each on its own channel with its own certificate, each with
one heartbeat in flight (concurrency 1 and `--nodes`). Rounds alternate baseline and registry;
the table shows medians and the ratio (target: registry >= 0.8 x baseline).

    .venv/bin/python bench/registry_heartbeats.py [--seconds 3] [--rounds 3] [--nodes 8]
    .venv/bin/python -m bench --only registry [--quick]     # the same, from the runner
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import registry_pb2 as pb
from kodosumi.v1 import registry_pb2_grpc

if TYPE_CHECKING:  # the script runs without the `bench` package on sys.path
    from bench.report import Result

HEARTBEAT = "/kodosumi.v1.RegistryService/Heartbeat"
TARGET_RATIO = 0.8
DOMAIN = "bench.kodosumi"


# -- servers (each runs in a child process: `--serve registry|baseline`) -------------------------


async def serve_registry(pki: Path, state: Path) -> None:
    from registryd.config import RegistryConfig, TlsConfig
    from registryd.daemon import RegistryDaemon

    daemon = RegistryDaemon(
        RegistryConfig(
            listen="127.0.0.1:0",
            state_dir=state,
            tls=TlsConfig(ca_cert=pki / "ca.pem", ca_key=pki / "ca.key"),
        )
    )
    await daemon.start()
    await _announce_and_wait(daemon.address)
    await daemon.stop(grace=1)


async def serve_baseline(pki: Path) -> None:
    response = pb.HeartbeatResponse(lease=pb.NodeLease())
    response.lease.ttl.FromSeconds(30)
    response.lease.heartbeat_interval.FromSeconds(10)

    async def heartbeat(request: pb.HeartbeatRequest, context: object) -> pb.HeartbeatResponse:
        return response

    handler = grpc.method_handlers_generic_handler(
        "kodosumi.v1.RegistryService",
        {
            "Heartbeat": grpc.unary_unary_rpc_method_handler(
                heartbeat,
                request_deserializer=pb.HeartbeatRequest.FromString,
                response_serializer=pb.HeartbeatResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    await _announce_and_wait(f"127.0.0.1:{port}")
    await server.stop(1)


async def _announce_and_wait(address: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(address, flush=True)
    await stop.wait()


# -- load -----------------------------------------------------------------------------------------


def make_pki(folder: Path, nodes: int) -> dict[str, TlsMaterial]:
    ca = CertificateAuthority.create(DOMAIN, folder / "ca.pem", folder / "ca.key")
    server_cert, server_key = ca.issue(
        SpiffeId.registry(DOMAIN, "baseline"), dns_names=("localhost",), ip_addresses=("127.0.0.1",)
    )
    write_public(folder / "server.pem", cert_pem(server_cert))
    write_private(folder / "server.key", key_pem(server_key))
    materials = {}
    for i in range(nodes):
        cert, key = ca.issue(SpiffeId.node(DOMAIN, f"bench-{i}"))
        materials[f"bench-{i}"] = TlsMaterial(cert_pem(ca.cert), cert_pem(cert), key_pem(key))
    return materials


async def start_server(kind: str, pki: Path, state: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--pki",
        str(pki),
        "--state",
        str(state),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(60):
        address = (await process.stdout.readline()).decode().strip()
    if not address:
        raise RuntimeError(f"{kind} server did not start")
    return process, address


async def stop_server(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        await process.wait()


async def measure(
    address: str,
    materials: dict[str, TlsMaterial],
    concurrency: int,
    seconds: float,
    *,
    register: bool,
) -> float:
    """Heartbeats per second with `concurrency` nodes, each one heartbeat in flight."""
    names = list(materials)[:concurrency]
    channels = [
        open_channel(address, materials[name], expect=ServerExpectation.registry())
        for name in names
    ]
    stubs = [registry_pb2_grpc.RegistryServiceStub(c) for c in channels]
    try:
        if register:
            for name, stub in zip(names, stubs, strict=True):
                registration = pb.RegisterNodeRequest(node_id=name, endpoints=["127.0.0.1:1"])
                registration.heartbeat_interval.FromSeconds(10)
                await stub.RegisterNode(registration, timeout=10)
        requests = [pb.HeartbeatRequest(node_id=name) for name in names]
        for stub, request in zip(stubs, requests, strict=True):  # warm the connections
            await stub.Heartbeat(request, timeout=10)
        count = 0
        deadline = time.perf_counter() + seconds

        async def beat(
            stub: registry_pb2_grpc.RegistryServiceAsyncStub, req: pb.HeartbeatRequest
        ) -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await stub.Heartbeat(req, timeout=10)
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(beat(s, r) for s, r in zip(stubs, requests, strict=True)))
        return count / (time.perf_counter() - start)
    finally:
        for channel in channels:
            await channel.close()


Row = tuple[int, float, float, float]  # (in flight, raw grpc.aio, registryd, ratio)


async def run(seconds: float, rounds: int, nodes: int) -> list[Row]:
    rows = await measure_all(seconds, rounds, nodes)
    print()
    print(f"heartbeats/s over mTLS, medians of {rounds} rounds of {seconds:g} s")
    print(f"{'in flight':>9} | {'raw grpc.aio':>12} | {'registryd':>10} | {'ratio':>6}")
    print(f"{'-' * 9}-+-{'-' * 12}-+-{'-' * 10}-+-{'-' * 6}")
    for concurrency, base, reg, ratio in rows:
        print(f"{concurrency:>9} | {base:>12.0f} | {reg:>10.0f} | {ratio:>6.2f}")
    print(f"target: ratio >= {TARGET_RATIO:.2f}")
    return rows


async def measure_all(seconds: float, rounds: int, nodes: int) -> list[Row]:
    """Per concurrency (1 and `nodes`): medians of baseline and registry, and their ratio."""
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as tmp:
        pki = Path(tmp) / "pki"
        materials = make_pki(pki, nodes)
        registry, registry_address = await start_server("registry", pki, Path(tmp) / "state")
        baseline, baseline_address = await start_server("baseline", pki, Path(tmp) / "state")
        rows: list[Row] = []
        try:
            for concurrency in sorted({1, nodes}):
                base_rates, registry_rates = [], []
                for _ in range(rounds):
                    base_rates.append(
                        await measure(
                            baseline_address, materials, concurrency, seconds, register=False
                        )
                    )
                    registry_rates.append(
                        await measure(
                            registry_address, materials, concurrency, seconds, register=True
                        )
                    )
                base, reg = statistics.median(base_rates), statistics.median(registry_rates)
                rows.append((concurrency, base, reg, reg / base))
        finally:
            await stop_server(registry)
            await stop_server(baseline)
    return rows


async def benchmark(quick: bool) -> Result:
    """The runner's entry (`python -m bench --only registry`): the same measurement, as a table."""
    from bench.report import Figure, Result, Table, fmt

    seconds, rounds, nodes = (1.0, 1, 8) if quick else (2.0, 3, 8)
    rows = await measure_all(seconds, rounds, nodes)
    table = Table(
        f"registry heartbeats/s over mTLS, medians of {rounds} round(s) of {seconds:g} s",
        ["in flight", "raw grpc.aio unary", "registryd", "ratio"],
        [[str(c), fmt(base), fmt(reg), f"{ratio:.2f}"] for c, base, reg, ratio in rows],
        [f"target: ratio >= {TARGET_RATIO:.2f}"],
    )
    figures = [
        Figure(
            "registry",
            f"heartbeats/s, {c} in flight",
            reg,
            "hb/s",
            "raw grpc unary",
            base,
            f">= {TARGET_RATIO:.2f}x raw",
            ratio >= TARGET_RATIO,
        )
        for c, base, reg, ratio in rows
    ]
    return Result([table], figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per figure")
    parser.add_argument("--nodes", type=int, default=8, help="nodes heartbeating at once")
    parser.add_argument("--serve", choices=("registry", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--pki", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "registry":
        asyncio.run(serve_registry(args.pki, args.state))
    elif args.serve == "baseline":
        asyncio.run(serve_baseline(args.pki))
    else:
        asyncio.run(run(args.seconds, args.rounds, args.nodes))


if __name__ == "__main__":
    main()
