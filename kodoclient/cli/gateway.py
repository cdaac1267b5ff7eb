"""`koco gateway`: what an admin does for a marketplace gateway (`kodogate`, docs/gateway.md)."""

from __future__ import annotations

import click

from kodoclient.cli.auth_options import issue_token, registry_option
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodosumi.v1 import auth_pb2 as pb


@click.group()
def gateway() -> None:
    """Marketplace gateways (kodogate)."""


@gateway.command("token")
@click.argument("gateway_id", metavar="GATEWAY_ID")
@click.option("--ttl", type=float, metavar="SECONDS", help="Token lifetime (1 day).")
@registry_option
@json_option
@click.pass_context
def token(ctx: click.Context, gateway_id: str, ttl: float | None, registry: str | None) -> None:
    """A one-time enrollment token for a gateway: `kodogate enroll TOKEN --state-dir DIR`.

    Its certificate is spiffe://<domain>/gateway/GATEWAY_ID: a client of nodes that may
    launch, watch and answer its own executions, and read the registry.
    """
    state = state_of(ctx)

    async def body() -> ExitCode:
        return await issue_token(state, registry, pb.IDENTITY_KIND_GATEWAY, gateway_id, ttl)

    execute(ctx, body)
