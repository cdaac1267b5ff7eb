"""`koco cancel ID`: ask the node to stop an execution."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.events import status_name


@click.command("cancel")
@click.argument("execution_id", metavar="ID")
@click.option("--reason", default="", help="Why; recorded with the CANCELLED status.")
@json_option
@click.pass_context
def cancel(ctx: click.Context, execution_id: str, reason: str) -> None:
    """Cancel execution ID (exit 6 when it has already ended)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution = await client.cancel(execution_id, reason)
        if state.settings.json:
            state.emit(record(execution))
        else:
            state.out.print(f"{execution_id}: {status_name(execution.status)}", highlight=False)
        return exit_codes.OK

    execute(ctx, body)
