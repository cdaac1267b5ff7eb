"""The `registryd` command: parse flags, load the configuration, serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path

from kodosumi.logs import configure_logging
from registryd.config import DEFAULT_LISTEN, ConfigError, RegistryConfig, load_config
from registryd.daemon import ListenError, RegistryDaemon, StateDirBusy

log = logging.getLogger("registryd")


class ExitCode(IntEnum):
    """What `registryd`'s exit status means."""

    OK = 0
    # An unexpected fault; the log has the traceback.
    FAILURE = 1
    # The configuration file, environment or flags are unusable.
    CONFIG = 2
    # The listen address is taken or not ours.
    CANNOT_LISTEN = 3
    # Another registryd runs on the same state directory.
    STATE_DIR_IN_USE = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registryd",
        description="The kodosumi registry: nodes register and heartbeat, clients read.",
        epilog="Exit codes: "
        + "; ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode),
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument(
        "--state-dir", type=Path, help="where the database and PKI live (<kodosumi state>/registry)"
    )
    parser.add_argument(
        "--listen", help=f"host:port to serve on (default {DEFAULT_LISTEN}; port 0 picks one)"
    )
    parser.add_argument(
        "--advertise",
        action="append",
        metavar="HOST[:PORT]",
        help="what nodes and people dial, put in enrollment tokens (repeatable; default: the "
        "listen address, for 0.0.0.0 this host's addresses)",
    )
    parser.add_argument(
        "--tls-host",
        action="append",
        metavar="NAME",
        help="one more DNS name or IP address the registry's certificate names (repeatable)",
    )
    parser.add_argument("--registry-id", help="the registry's id in its SPIFFE identity")
    parser.add_argument("--ca-cert", type=Path, help="CA certificate shared with the nodes")
    parser.add_argument("--ca-key", type=Path, help="key of that CA (to issue our certificate)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="plaintext without identities: every caller is an anonymous admin and node",
    )
    parser.add_argument(
        "--insecure-allow-remote",
        action="store_true",
        default=None,
        help="allow --insecure on a non-loopback address: anyone who reaches it is an admin",
    )
    parser.add_argument(
        "--admin",
        action="append",
        metavar="NAME",
        help="a user who is an admin of the auth provider whatever its database says "
        "(bootstrap; repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log lines as text or JSON objects (default: [telemetry] log_format, else text)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> RegistryConfig:
    return load_config(
        args.config,
        state_dir=args.state_dir,
        listen=args.listen,
        advertise=tuple(args.advertise) if args.advertise else None,
        registry_id=args.registry_id,
        insecure=args.insecure,
        insecure_allow_remote=args.insecure_allow_remote,
        tls__ca_cert=args.ca_cert,
        tls__ca_key=args.ca_key,
        tls__hosts=tuple(args.tls_host) if args.tls_host else None,
        auth__admins=tuple(args.admin) if args.admin else None,
    )


async def serve(config: RegistryConfig) -> None:
    """Run the registry until SIGTERM or SIGINT, then stop gracefully."""
    daemon = RegistryDaemon(config)
    await daemon.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("stopping: in-flight calls get %.1f s", config.shutdown_grace)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await daemon.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = config_from_args(args)
        configure_logging(args.log_level, args.log_format or config.telemetry.log_format)
        asyncio.run(serve(config))
    except ConfigError as e:
        log.error("configuration: %s", e)
        sys.exit(ExitCode.CONFIG)
    except ListenError as e:
        log.error("%s", e)
        sys.exit(ExitCode.CANNOT_LISTEN)
    except StateDirBusy as e:
        log.error("%s", e)
        sys.exit(ExitCode.STATE_DIR_IN_USE)
    except Exception:
        log.exception("registryd failed")
        sys.exit(ExitCode.FAILURE)
    sys.exit(ExitCode.OK)
