"""`koco cancel ID`: ask the node to stop an execution, then show how it ended."""

from __future__ import annotations

import asyncio

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.events import TERMINAL_STATUSES, status_name


@click.command("cancel")
@click.argument("given", metavar="ID")
@click.option("--reason", default="", help="Why; recorded with the CANCELLED status.")
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Wait this long for the execution to end and print its final status (0: don't).",
)
@json_option
@click.pass_context
def cancel(ctx: click.Context, given: str, reason: str, wait_seconds: float) -> None:
    """Cancel execution ID and print the status it ended in (exit 6 when it had already
    ended)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            execution = await client.cancel(execution_id, reason)
            if wait_seconds and execution.status not in TERMINAL_STATUSES:
                # The node stops the flow within its cancel grace; show the outcome, not
                # the RUNNING the cancel call answered with.
                try:
                    execution = await asyncio.wait_for(client.wait(execution_id), wait_seconds)
                except TimeoutError:
                    execution = await client.get_execution(execution_id)
        if state.settings.json:
            state.emit(record(execution))
            return exit_codes.OK
        line = f"{execution_id}: {status_name(execution.status)}"
        if execution.status not in TERMINAL_STATUSES:
            line += " (cancel requested; still stopping)"
        elif execution.status_reason:
            line += f" — {execution.status_reason}"
        state.out.print(line, highlight=False, markup=False, soft_wrap=True)
        return exit_codes.OK

    execute(ctx, body)
