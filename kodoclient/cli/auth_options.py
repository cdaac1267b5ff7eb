"""What the commands that talk to the registry share (the auth commands `pki`, `user`,
`group`, `login`, `whoami`, `verify`, and `nodes`, `flows --all`, `watch-registry`): the
`--registry` option, and the registry's address and credentials from the global options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kodoclient.auth import AuthClient, RegistryTarget, duration, resolve_registry
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState
from kodoclient.cli.render import record
from kodoclient.cli.tables import timestamp
from kodosumi.v1 import auth_pb2 as pb

F = TypeVar("F", bound=Callable[..., Any])


def registry_option(command: F) -> F:
    decorated: F = click.option(
        "--registry",
        metavar="HOST:PORT",
        help="The registry (auth provider); default: $KODOSUMI_REGISTRY, the one you logged "
        "in with, a local registryd, 127.0.0.1:7460.",
    )(command)
    return decorated


def registry_target(state: CliState, registry: str | None) -> RegistryTarget:
    """The registry's address and credentials from `--registry` and the global options."""
    state.talks_to = "registry"
    s = state.settings
    return resolve_registry(
        address=registry,
        state_dir=s.state,
        ca=s.ca,
        cert=s.cert,
        key=s.key,
        insecure=s.insecure,
        call_timeout=s.timeout,
    )


def auth_client(state: CliState, registry: str | None) -> AuthClient:
    return AuthClient(registry_target(state, registry))


async def issue_token(
    state: CliState,
    registry: str | None,
    kind: int,
    name: str,
    ttl: float | None,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> exit_codes.ExitCode:
    """Ask the auth service for a one-time enrollment token and print it (the token alone
    on stdout, so scripts can capture it; its identity and expiry as a note)."""
    request = pb.CreateEnrollmentTokenRequest(
        kind=kind,  # type: ignore[arg-type]
        name=name,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    if (d := duration(ttl)) is not None:
        request.ttl.CopyFrom(d)
    async with auth_client(state, registry) as client:
        response = await client.call("CreateEnrollmentToken", request)
    if state.settings.json:
        state.emit(record(response))
    else:
        state.note(f"for {response.identity}, until {timestamp(response.expire_time)}")
        click.echo(response.enrollment_token)
    return exit_codes.OK
