"""`koco peers`: the node's peer table."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import peers_table


@click.command("peers")
@json_option
@click.pass_context
def peers(ctx: click.Context) -> None:
    """List the node's peers: where it found them, their liveness by its own checks, flows."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            found = await client.peers()
        if state.settings.json:
            for peer in found:
                state.emit(record(peer))
        elif found:
            state.show_table(peers_table(found))
        else:
            state.note("no peers (no registry, and none found on the LAN)")
        return exit_codes.OK

    execute(ctx, body)
