"""`koco node`: what the node says about itself."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import node_view


@click.command("node")
@json_option
@click.pass_context
def node(ctx: click.Context) -> None:
    """Show the node's id, identity, endpoints and load."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            info = await client.node_info()
        if state.settings.json:
            state.emit(record(info))
        else:
            state.out.print(node_view(info))
        return exit_codes.OK

    execute(ctx, body)
