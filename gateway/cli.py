"""`kodogate`: the gateway daemon's command line.

    kodogate serve --config gateway.toml [--listen HOST:PORT]
    kodogate enroll TOKEN --state-dir DIR     # the gateway's certificate from a token

`serve` prints one line `kodogate listening on http://HOST:PORT` once it accepts requests
and writes `<state>/gateway.json` with that address; SIGTERM or SIGINT stop it gracefully.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

import click
import uvicorn

from gateway.app import Gateway
from gateway.config import ConfigError, GatewayConfig, load_config
from kodosumi.enrollment import EnrollmentError, EnrollmentToken, enroll
from kodosumi.logs import configure_logging
from kodosumi.pki import write_private, write_public
from kodosumi.spiffe import IdentityKind
from kodosumi.sqlite import private_dir
from kodosumi.tls import TlsFiles, TlsMaterial

log = logging.getLogger("kodogate")

EXIT_CONFIG = 2
EXIT_ENROLL = 3


def _tls_files(config: GatewayConfig) -> TlsFiles:
    folder = config.identity_dir
    return TlsFiles(
        config.ca_cert or folder / "ca.pem",
        config.cert or folder / "cert.pem",
        config.key or folder / "key.pem",
    )


def _credentials(config: GatewayConfig) -> TlsMaterial:
    files = _tls_files(config)
    if not files.exist():
        raise ConfigError(
            f"no gateway certificate at {files.cert} (run `kodogate enroll TOKEN` or set [tls])"
        )
    return files.read()


async def _serve(config: GatewayConfig) -> None:
    host, port = config.host_port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    address = f"{host}:{sock.getsockname()[1]}"
    if not config.public_url:
        # Known before any job is driven: results link files under it.
        config = replace(config, public_url=f"http://{address}")
    gateway = Gateway(config, _credentials(config))
    app = await gateway.start()
    server = uvicorn.Server(
        uvicorn.Config(gateway.asgi(app), log_level="warning", access_log=False, lifespan="off")
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 (uvicorn has no event)
        await asyncio.sleep(0.02)
    (config.state_dir / "gateway.json").write_text(
        json.dumps({"address": address, "url": f"http://{address}"})
    )
    print(f"kodogate listening on http://{address}", flush=True)
    try:
        await serving
    finally:
        await gateway.stop()


@click.group()
def main() -> None:
    """kodogate: kodosumi flows sold as MIP-003 agentic services over HTTP."""


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option("--listen", default=None, help="HOST:PORT (overrides [gateway] listen)")
def serve(config_path: Path, listen: str | None) -> None:
    """Serve the services of CONFIG."""
    configure_logging()
    try:
        config = load_config(config_path)
        if listen:
            config = replace(config, listen=listen)
        private_dir(config.state_dir)
        asyncio.run(_serve(config))
    except ConfigError as e:
        click.echo(f"kodogate: {e}", err=True)
        sys.exit(EXIT_CONFIG)


@main.command("enroll")
@click.argument("token")
@click.option("--state-dir", type=click.Path(path_type=Path), required=True)
def enroll_command(token: str, state_dir: Path) -> None:
    """Get the gateway's certificate with a one-time enrollment token (`koco gateway token`)."""
    try:
        parsed = EnrollmentToken.decode(token)
        if parsed.spiffe_id.kind is not IdentityKind.GATEWAY:
            raise EnrollmentError(f"the token is for {parsed.identity}, not a gateway")
        enrolled = asyncio.run(enroll(parsed))
    except (EnrollmentError, ValueError) as e:
        click.echo(f"kodogate: {e}", err=True)
        sys.exit(EXIT_ENROLL)
    folder = private_dir(state_dir / "identity")
    write_public(folder / "ca.pem", enrolled.material.ca_cert)
    write_public(folder / "cert.pem", enrolled.material.cert)
    write_private(folder / "key.pem", enrolled.material.key)
    click.echo(f"enrolled as {enrolled.identity}; credentials in {folder}")
