"""`kodosumid`: run a node until SIGTERM or SIGINT, then stop gracefully."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

from kodosumi import __version__
from kodosumi.errors import KodosumiError
from kodosumi.logs import configure_logging
from kodosumid.app import NodeApp, check_advertise
from kodosumid.auth.identity import join
from kodosumid.catalog import example_flows
from kodosumid.catalog_check import check_catalog, report
from kodosumid.config import NodeConfig, load_config
from kodosumid.flow_flags import add_flow_flags, with_flow_flags


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kodosumid", description="Run a kodosumi node: serve flows, run them on Ray."
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--state-dir", type=Path, help="where the node keeps its state")
    parser.add_argument("--listen", help="HOST:PORT to serve on (default 127.0.0.1:7470)")
    parser.add_argument(
        "--advertise",
        action="append",
        metavar="HOST[:PORT]",
        help="what peers and clients dial (repeatable; default: the listen address, for "
        "0.0.0.0 this host's addresses); also KODOSUMI_ADVERTISE, [node] advertise",
    )
    parser.add_argument("--node-id", help="the node's id (default: generated once, kept)")
    parser.add_argument("--insecure", action="store_true", help="serve plaintext (no mTLS)")
    parser.add_argument(
        "--insecure-allow-remote",
        action="store_true",
        help="allow --insecure on a non-loopback address: anyone who reaches it is an admin",
    )
    parser.add_argument("--ray-address", help="join this Ray cluster instead of an embedded one")
    parser.add_argument("--registry", metavar="ADDRESS", help="register with this registryd")
    parser.add_argument(
        "--lan",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="advertise and discover peers on the LAN with zeroconf (default: on)",
    )
    add_flow_flags(parser)  # --flow and the placement flags after it (flow_flags.py)
    parser.add_argument(
        "--join",
        metavar="TOKEN",
        help="enroll with the auth provider using a one-time token (docs/security.md)",
    )
    parser.add_argument(
        "--check",
        metavar="CONFIG",
        type=Path,
        help="check every flow of the TOML catalog CONFIG (imports, specs, signatures), "
        "print every error, exit 0 when all can run, 2 otherwise; starts nothing",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when a flow of the catalog is broken (default: list it "
        "as unavailable and serve the others)",
    )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="development: when a flow's module or spec changes, check it again and "
        "replace the executors that ran the old code (off by default)",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or JSON objects (default: [telemetry] log_format, else text)",
    )
    parser.add_argument("--version", action="version", version=f"kodosumid {__version__}")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> NodeConfig:
    config = load_config(args.config)
    if args.state_dir:
        config = replace(config, state_dir=args.state_dir.expanduser().resolve())
    if args.listen:
        config = replace(config, listen=args.listen)
    if args.advertise:
        config = replace(config, advertise=tuple(args.advertise))
    if args.node_id:
        config = replace(config, node_id=args.node_id)
    if args.insecure:
        config = replace(config, insecure=True)
    if args.insecure_allow_remote:
        config = replace(config, insecure_allow_remote=True)
    if args.ray_address:
        config = replace(config, ray=replace(config.ray, address=args.ray_address))
    if args.registry:
        config = replace(config, registry_address=args.registry)
    if args.lan is not None:
        config = replace(config, discovery=replace(config.discovery, enabled=args.lan))
    if args.strict:
        config = replace(config, strict=True)
    if args.reload:
        config = replace(config, reload=True)
    if args.flow:
        base = config.flows if config.flows is not None else example_flows()
        config = replace(config, flows=with_flow_flags(base, args.flow))
    return config


# Collections of the middle generation between two full collections (Python's default: 10).
FULL_COLLECTION_EVERY = 100


def keep_startup_out_of_collections() -> None:
    """What start-up made (imported modules, Ray, the servers) lives as long as the process:
    moved out of the collector's reach, later full collections walk only what came after.
    Before, each one walked it all and stopped the event loop 0.1-0.5 s, every ~10 s while
    1,000 watchers were served (docs/performance.md, fan-out)."""
    gc.collect()  # start-up's garbage first: frozen objects are never collected
    gc.freeze()
    # With the frozen objects uncounted, full collections would come several times as often
    # (one is due when a quarter as many objects as the collector holds were promoted).
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


async def serve(config: NodeConfig, join_token: str | None = None) -> None:
    # Before enrolling: a node that could not tell peers where it is must not enroll either.
    check_advertise(config)
    if join_token:
        config = await join(config, join_token)
    app = NodeApp(config)
    # Before starting: a SIGTERM while the node starts (or right after it serves) must
    # still stop it gracefully, killing the executors it has begun to create.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def handle_signals() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

    handle_signals()
    app.on_ray_ready = handle_signals  # Ray's own handler would abort the stop midway
    try:
        await app.start()
    except BaseException:
        await app.stop()
        raise
    keep_startup_out_of_collections()
    await stop.wait()
    await app.stop()


def check_only(args: argparse.Namespace) -> int:
    """`kodosumid --check CONFIG`: every error of the catalog at once, nothing started."""
    try:
        config = build_config(argparse.Namespace(**{**vars(args), "config": args.check}))
    except KodosumiError as e:
        print(f"kodosumid: invalid configuration: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"kodosumid: {e}", file=sys.stderr)
        return 2
    flows = config.flows if config.flows is not None else example_flows()
    python_path = config.python_path or (os.getcwd(),)
    check = asyncio.run(check_catalog(flows, python_path))
    for line in report(check):
        print(line)
    broken = len(check.broken)
    print(
        f"{len(check.flows)} flows, {broken} broken" + (" (not checked)" if check.failure else "")
    )
    return 2 if broken or check.failure else 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check is not None:
        raise SystemExit(check_only(args))
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = build_config(args)
    except KodosumiError as e:
        print(f"kodosumid: invalid configuration: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:
        print(f"kodosumid: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    # Text or JSON lines naming the execution and trace they concern (kodosumi/logs.py).
    configure_logging(args.log_level, args.log_format or config.telemetry.log_format)
    try:
        asyncio.run(serve(config, args.join))
    except KodosumiError as e:
        print(f"kodosumid: {e}", file=sys.stderr)
        raise SystemExit(2) from None
