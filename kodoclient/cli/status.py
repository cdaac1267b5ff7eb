"""`koco status ID`: one execution's current state."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import execution_view


@click.command("status")
@click.argument("given", metavar="ID")
@json_option
@click.pass_context
def status(ctx: click.Context, given: str) -> None:
    """Show the state of execution ID (exits 0 whenever the node answered)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution = await client.get_execution(await resolve_execution_id(client, given))
        if state.settings.json:
            state.emit(record(execution))
        else:
            state.out.print(execution_view(execution))
        return exit_codes.OK

    execute(ctx, body)
