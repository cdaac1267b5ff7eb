"""`koco watch ID`: follow an execution live (or replay a finished one) to its end."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.follow import follow
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option


@click.command("watch")
@click.argument("given", metavar="ID")
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only events after this sequence number (resume where you left off).",
)
@json_option
@click.pass_context
def watch(ctx: click.Context, given: str, after_seq: int) -> None:
    """Show the events of execution ID until it ends; exit with its outcome."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            # Fails fast with NOT_FOUND/UNAVAILABLE before the watch starts retrying.
            execution = await client.get_execution(execution_id)
            view = await follow(
                state, client, execution_id, after_seq=after_seq, flow=execution.flow
            )
        return exit_codes.for_execution_status(view.status)

    execute(ctx, body)
